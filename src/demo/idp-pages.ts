/**
 * HTML of the demo IdP: sign-in form, sign-out confirmation, errors. Plain strings with inline
 * CSS, no template engine and nothing fetched from elsewhere, so the demo works offline.
 */

export interface DemoCredentialsHint {
  username: string
  password: string
  email: string
  groups: string[]
  email_verified: boolean
}

export function escapeHtml(value: string): string {
  return value
    .replaceAll('&', '&amp;')
    .replaceAll('<', '&lt;')
    .replaceAll('>', '&gt;')
    .replaceAll('"', '&quot;')
    .replaceAll("'", '&#39;')
}

const STYLE = `
  *{box-sizing:border-box}
  body{margin:0;min-height:100vh;display:flex;align-items:center;justify-content:center;
    font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;background:#f3f4f6;color:#111827}
  main{width:100%;max-width:380px;margin:24px;background:#fff;border-radius:12px;padding:28px 28px 20px;
    box-shadow:0 1px 3px rgba(0,0,0,.08),0 8px 24px rgba(0,0,0,.06)}
  h1{font-size:20px;margin:0 0 4px}
  .sub{color:#6b7280;margin:0 0 20px;font-size:13px}
  label{display:block;font-weight:600;font-size:13px;margin:12px 0 4px}
  input[type=text],input[type=password]{width:100%;padding:9px 11px;border:1px solid #d1d5db;border-radius:8px;font:inherit}
  input:focus{outline:2px solid #2563eb;outline-offset:-1px;border-color:#2563eb}
  button{width:100%;margin-top:18px;padding:10px;border:0;border-radius:8px;background:#2563eb;color:#fff;
    font:inherit;font-weight:600;cursor:pointer}
  button:hover{background:#1d4ed8}
  button.secondary{background:#fff;color:#374151;border:1px solid #d1d5db;margin-top:8px}
  .error{background:#fef2f2;color:#991b1b;border:1px solid #fecaca;border-radius:8px;padding:8px 11px;margin:0 0 8px}
  .hint{margin-top:22px;background:#f9fafb;border:1px dashed #d1d5db;border-radius:8px;padding:10px 12px;font-size:12.5px}
  .hint table{width:100%;border-collapse:collapse}
  .hint td{padding:2px 4px;vertical-align:top}
  .hint td code{white-space:nowrap}
  code{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:12px}
  .cancel{display:block;text-align:center;margin-top:12px;font-size:13px;color:#6b7280}
`

function page(heading: string, inner: string, script = ''): string {
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Moatless demo IdP</title>
<style>${STYLE}</style>
</head>
<body>
<main>
<h1>${escapeHtml(heading)}</h1>
${inner}
</main>
${script}
</body>
</html>`
}

export function loginPage(opts: {
  action: string
  abortAction: string
  clientId: string
  username?: string
  error?: string
  users: DemoCredentialsHint[]
}): string {
  const error = opts.error === undefined ? '' : `<p class="error" role="alert">${escapeHtml(opts.error)}</p>`
  const rows = opts.users
    .map((u) => {
      const note = [u.groups.length > 0 ? u.groups.join(', ') : 'no groups', u.email_verified ? '' : 'email not verified']
        .filter(Boolean)
        .join('; ')
      return `<tr><td><code>${escapeHtml(u.username)}</code></td><td><code>${escapeHtml(u.password)}</code></td><td>${escapeHtml(note)}</td></tr>`
    })
    .join('')
  const hint =
    opts.users.length === 0
      ? ''
      : `<div class="hint"><strong>Demo users</strong><table>${rows}</table></div>`
  return page(
    'Sign in',
    `<p class="sub">Moatless demo IdP · for <code>${escapeHtml(opts.clientId)}</code></p>
${error}
<form method="post" action="${escapeHtml(opts.action)}" autocomplete="off">
<label for="username">Username</label>
<input id="username" name="username" type="text" value="${escapeHtml(opts.username ?? '')}" autofocus required>
<label for="password">Password</label>
<input id="password" name="password" type="password" required>
<button id="sign-in" type="submit">Sign in</button>
</form>
<form method="post" action="${escapeHtml(opts.abortAction)}"><button id="cancel" class="secondary" type="submit">Cancel</button></form>
${hint}`,
  )
}

/**
 * RP-initiated logout. `form` is oidc-provider's form (it carries the xsrf token); it is
 * submitted at once with logout=yes (sign out of the IdP entirely), so a browser goes straight
 * on to the post_logout_redirect_uri. Without JavaScript the button does the same.
 */
export function logoutPage(form: string): string {
  const withLogout = form.replace('</form>', '<input type="hidden" name="logout" value="yes"/></form>')
  return page(
    'Signing out…',
    `<p class="sub">Moatless demo IdP</p>
${withLogout}
<button id="sign-out" type="submit" form="op.logoutForm">Continue signing out</button>`,
    `<script>document.getElementById('op.logoutForm').submit()</script>`,
  )
}

export function signedOutPage(): string {
  return page('Signed out', '<p class="sub">Moatless demo IdP</p><p>You have been signed out of the demo IdP.</p>')
}

export function errorPage(message: string, details: Record<string, string> = {}): string {
  const rows = Object.entries(details)
    .map(([k, v]) => `<p><code>${escapeHtml(k)}</code>: ${escapeHtml(v)}</p>`)
    .join('')
  return page('Something went wrong', `<p class="sub">Moatless demo IdP</p><p class="error">${escapeHtml(message)}</p>${rows}`)
}
