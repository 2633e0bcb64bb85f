import { parseDocument, LineCounter, visit, isScalar, isCollection } from 'yaml'
for (const src of ['a: 1\nfoo: "unterminated\n', 'a:\n  b: [x\n  c: 1\n', 'a: 1\nb: [x\n', 'a: {x: 1\n', "a: 'x\n\nb: 1\n", 'a: [1, {b: 2\n', 'a:\n  client_id: [moatless\n  client_secret: s\nb: 1\n']) {
  const lc = new LineCounter()
  const d = parseDocument(src, { lineCounter: lc, prettyErrors: false })
  const nodes: string[] = []
  visit(d, { Node (_k, n) { if ((isScalar(n) || isCollection(n)) && n.range) nodes.push(`${isScalar(n) ? n.type : (n as any).flow ? 'flow' : 'block'}@${n.range.join(',')}`) } })
  console.log(JSON.stringify(src), d.errors.map(e => [e.message, e.pos]), nodes.join(' '))
}
