import * as client from 'openid-client'
import { startIdp } from '../../src/demo/idp.js'
import { Browser } from '../helpers/browser.js'
import { signInAtIdp } from '../helpers/idp-login.js'
const idp = await startIdp({ clients: [{ client_id: 'm', client_secret: 's', redirect_uris: ['http://app.localhost:1/cb'] }] })
;(idp.provider as any).on('server_error', (_c: unknown, e: unknown) => console.log('server_error', e))
const config = await client.discovery(new URL(idp.issuer), 'm', 's', undefined, { execute: [client.allowInsecureRequests] })
const v = client.randomPKCECodeVerifier()
const url = client.buildAuthorizationUrl(config, { redirect_uri: 'http://app.localhost:1/cb', scope: 'openid email profile offline_access', code_challenge: await client.calculatePKCECodeChallenge(v), code_challenge_method: 'S256' })
const b = new Browser()
const r = await b.follow(url.href)
console.log(r.chain)
const left = await signInAtIdp(b, r.final.url, 'alice', 'alice-password')
console.log(left)
const tokens = await client.authorizationCodeGrant(config, new URL(left.url), { pkceCodeVerifier: v })
console.log(tokens)
await idp.close(); await b.close()
