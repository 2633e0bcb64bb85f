import t from 'tap'
import Fastify, { type FastifyInstance } from 'fastify'
import { addStage } from '../src/context.js'

/** A fastify app whose one route answers 'handler'; `ran` records which steps ran, in order. */
async function app (steps: (ran: string[]) => Array<Parameters<typeof addStage>[1]>): Promise<{ app: FastifyInstance; ran: string[] }> {
  const ran: string[] = []
  const app = Fastify()
  app.setErrorHandler((err: Error, _req, reply) => reply.code(500).send({ error: err.message }))
  for (const step of steps(ran)) addStage(app, step)
  app.get('/', async () => { ran.push('handler'); return 'handler' })
  await app.ready()
  return { app, ran }
}

t.test('steps run in the order they were added, then the route', async (t) => {
  const { app: a, ran } = await app((ran) => [
    () => { ran.push('one'); return undefined },
    () => { ran.push('two'); return new Promise<void>((resolve) => setTimeout(() => { ran.push('two done'); resolve() }, 20)) },
    () => { ran.push('three'); return undefined }
  ])
  const res = await a.inject('/')
  t.equal(res.statusCode, 200)
  t.equal(res.body, 'handler')
  t.same(ran, ['one', 'two', 'two done', 'three', 'handler'], 'a step that returns a promise is waited for before the next')
  // Every request goes through all of them again.
  await a.inject('/')
  t.equal(ran.filter((s) => s === 'three').length, 2)
})

t.test('a step that answers ends the flow: no later step, no route handler', async (t) => {
  const { app: a, ran } = await app((ran) => [
    () => { ran.push('one'); return undefined },
    (_req, reply) => { ran.push('answers'); return reply.code(403).send('no') },
    () => { ran.push('after'); return undefined }
  ])
  const res = await a.inject('/')
  t.equal(res.statusCode, 403)
  t.equal(res.body, 'no')
  t.same(ran, ['one', 'answers'])
})

t.test('a step that answers while it waits ends the flow too', async (t) => {
  const { app: a, ran } = await app((ran) => [
    (_req, reply) => { ran.push('waits'); return new Promise<void>((resolve) => { void reply.code(401).send('late'); resolve() }) },
    () => { ran.push('after'); return undefined }
  ])
  const res = await a.inject('/')
  t.equal(res.statusCode, 401)
  t.same(ran, ['waits'])
})

t.test('a step that throws, or whose promise rejects, goes to the error handler', async (t) => {
  type Steps = Parameters<typeof app>[0]
  const cases: Array<{ name: string; steps: Steps; error: string; ran: string[] }> = [
    {
      name: 'throws',
      steps: (ran) => [() => { ran.push('throws'); throw new Error('boom') }, () => { ran.push('after'); return undefined }],
      error: 'boom',
      ran: ['throws']
    },
    {
      name: 'rejects',
      steps: (ran) => [() => { ran.push('rejects'); return Promise.reject(new Error('store down')) }, () => { ran.push('after'); return undefined }],
      error: 'store down',
      ran: ['rejects']
    },
    {
      // After a step that waited, the next one runs from the promise's callback, outside
      // fastify's own try: its throw must still reach the error handler (not become an
      // unhandled rejection).
      name: 'throws after a wait',
      steps: (ran) => [
        () => { ran.push('waits'); return Promise.resolve() },
        () => { ran.push('throws'); throw new Error('after a wait') },
        () => { ran.push('after'); return undefined }
      ],
      error: 'after a wait',
      ran: ['waits', 'throws']
    }
  ]
  for (const c of cases) {
    const { app: a, ran } = await app(c.steps)
    const res = await a.inject('/')
    t.equal(res.statusCode, 500, c.name)
    t.same(res.json(), { error: c.error }, c.name)
    t.same(ran, c.ran, `${c.name}: no later step ran`)
  }
})
