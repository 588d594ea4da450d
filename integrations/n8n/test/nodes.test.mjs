// The built nodes, run with a stand-in for n8n's execution context: what they send to the
// service, where the trigger keeps its state, and what an error shows (never the key, the
// request or the state).
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { test } from 'node:test';

const require = createRequire(import.meta.url);
const { TikTokNewAccountFollowedTrigger } = require('../dist/nodes/TikTokNewAccountFollowedTrigger/TikTokNewAccountFollowedTrigger.node.js');
const { TikTokGetFollowing } = require('../dist/nodes/TikTokGetFollowing/TikTokGetFollowing.node.js');
const { TikTokFollowingApi } = require('../dist/credentials/TikTokFollowingApi.credentials.js');

const KEY = 'canary-key-0123456789';
const STATE = { v: 2, handle: 'alice', watermark: 5, known: ['secret-state-segment'], gaps: [] };
const ITEM = { id: '1', uniqueId: 'bob' };

function context({ mode = 'trigger', params = {}, staticData = {}, reply, items = [{ json: {} }],
	continueOnFail = false, credentials = {} } = {}) {
	const sent = [];
	const ctx = {
		sent,
		staticData,
		getMode: () => mode,
		getNode: () => ({ name: 'TikTok', type: 'x', typeVersion: 1, parameters: {} }),
		getNodeParameter: (name, a, b) => {
			const fallback = typeof a === 'number' ? b : a;
			return name in params ? params[name] : fallback;
		},
		getWorkflowStaticData: () => staticData,
		getCredentials: async () => ({ apiKey: KEY, baseUrl: 'https://app.dumplingai.com',
			serviceUrl: 'http://127.0.0.1:8790/', serviceToken: '', ...credentials }),
		getInputData: () => items,
		continueOnFail: () => continueOnFail,
		helpers: {
			returnJsonArray: (list) => list.map((json) => ({ json })),
			httpRequestWithAuthentication: async (name, options) => {
				sent.push({ name, options });
				return typeof reply === 'function' ? reply(options) : reply;
			},
		},
	};
	return ctx;
}

const ok = (items = [ITEM], state = STATE) => ({ statusCode: 200, body: { items, state, meta: {} } });

test('a live poll sends the form to /v1/run and keeps the returned state', async () => {
	const ctx = context({ params: { handle: '@alice', firstRun: 'skipExisting', options: { count: 30 } },
		staticData: { state: { v: 2, old: true } }, reply: ok() });
	const out = await new TikTokNewAccountFollowedTrigger().poll.call(ctx);
	assert.deepEqual(out, [[{ json: ITEM }]]);
	const [{ name, options }] = ctx.sent;
	assert.equal(name, 'tikTokFollowingApi');
	assert.equal(options.url, 'http://127.0.0.1:8790/v1/run');
	assert.deepEqual(options.body, {
		operation: 'new_account_followed',
		inputs: { handle: '@alice', firstRun: 'skipExisting', count: 30 },
		state: { v: 2, old: true },
		mode: 'live',
		platform: 'n8n',
	});
	assert.equal(JSON.stringify(options).includes(KEY), false); // n8n adds the header itself
	assert.deepEqual(ctx.staticData.state, STATE);
});

test('a poll with nothing new returns null and still moves the state on', async () => {
	const ctx = context({ params: { handle: 'alice' }, reply: ok([], { v: 2, next: 1 }) });
	assert.equal(await new TikTokNewAccountFollowedTrigger().poll.call(ctx), null);
	assert.deepEqual(ctx.staticData.state, { v: 2, next: 1 });
});

test('fetch test event runs test mode and leaves the state exactly as it was', async () => {
	const staticData = { state: STATE };
	const ctx = context({ mode: 'manual', params: { handle: 'alice' }, staticData,
		reply: ok([ITEM, ITEM, ITEM], { v: 2, changed: true }) });
	const out = await new TikTokNewAccountFollowedTrigger().poll.call(ctx);
	assert.equal(out[0].length, 3);
	assert.equal(ctx.sent[0].options.body.mode, 'test');
	assert.deepEqual(staticData, { state: STATE });
});

test('a failed poll throws the connector message and leaves the state alone', async () => {
	const staticData = { state: STATE };
	const ctx = context({ params: { handle: 'alice' }, staticData, reply: { statusCode: 401,
		body: { error: { type: 'authentication_error', message: 'API key is invalid or missing. (401: check the API key)', status: 401 } } } });
	await assert.rejects(new TikTokNewAccountFollowedTrigger().poll.call(ctx), (error) => {
		assert.equal(error.message, 'API key is invalid or missing. (401: check the API key)');
		assert.match(error.description, /authentication_error, HTTP 401\. Check the API key/);
		const shown = JSON.stringify({ m: error.message, d: error.description });
		assert.equal(shown.includes(KEY) || shown.includes('secret-state-segment'), false);
		return true;
	});
	assert.deepEqual(staticData, { state: STATE });
});

test('an unreachable service is named without the request n8n attached to its error', async () => {
	const ctx = context({ params: { handle: 'alice' }, credentials: { serviceUrl: 'http://user:pw@127.0.0.1:1' },
		reply: () => {
			const error = new Error(`connect ECONNREFUSED; request ${JSON.stringify({ headers: { Authorization: `Bearer ${KEY}` }, body: { state: STATE } })}`);
			error.code = 'ECONNREFUSED';
			throw error;
		} });
	await assert.rejects(new TikTokNewAccountFollowedTrigger().poll.call(ctx), (error) => {
		assert.equal(error.message, 'Could not reach the connector service at http://127.0.0.1:1');
		assert.match(error.description, /^ECONNREFUSED: start it with/);
		const shown = JSON.stringify({ m: error.message, d: error.description });
		assert.equal(shown.includes(KEY) || shown.includes('secret-state-segment') || shown.includes('pw'), false);
		return true;
	});
});

test('a non-default DumplingAI base URL travels in credentials.baseUrl, never the key', async () => {
	const ctx = context({ params: { handle: 'alice' }, credentials: { baseUrl: 'http://127.0.0.1:8787' }, reply: ok() });
	await new TikTokNewAccountFollowedTrigger().poll.call(ctx);
	assert.deepEqual(ctx.sent[0].options.body.credentials, { baseUrl: 'http://127.0.0.1:8787' });
});

test('the action runs once per input item and pairs each account with it', async () => {
	let n = 0;
	const ctx = context({ items: [{ json: {} }, { json: {} }], params: { handle: 'alice', maxPages: 2 },
		reply: () => ok([{ id: String(++n) }], null) });
	const [out] = await new TikTokGetFollowing().execute.call(ctx);
	assert.deepEqual(out, [{ json: { id: '1' }, pairedItem: { item: 0 } }, { json: { id: '2' }, pairedItem: { item: 1 } }]);
	assert.deepEqual(ctx.sent[0].options.body.inputs, { handle: 'alice', maxPages: 2 });
	assert.equal(ctx.sent[0].options.body.operation, 'get_tiktok_user_following');
});

test('with continue on fail, an action error becomes an item', async () => {
	const ctx = context({ continueOnFail: true, params: { handle: 'bad handle' }, reply: { statusCode: 400,
		body: { error: { type: 'input_error', message: "handle: 'bad handle' is not a TikTok handle", field: 'handle' } } } });
	const [out] = await new TikTokGetFollowing().execute.call(ctx);
	assert.deepEqual(out, [{ json: { error: "handle: 'bad handle' is not a TikTok handle" }, pairedItem: { item: 0 } }]);
});

test('a service answer that is not the protocol is reported by its status', async () => {
	const ctx = context({ params: { handle: 'alice' }, reply: { statusCode: 413, body: 'Request Entity Too Large' } });
	await assert.rejects(new TikTokNewAccountFollowedTrigger().poll.call(ctx), /answered HTTP 413/);
});

test('the credential sends the key as Bearer and tests it with POST /v1/auth/test', () => {
	const cred = new TikTokFollowingApi();
	assert.equal(cred.authenticate.properties.headers.Authorization, '=Bearer {{$credentials.apiKey}}');
	assert.equal(cred.test.request.url, '/v1/auth/test');
	assert.equal(cred.test.request.method, 'POST');
});
