// The built nodes, run with a stand-in for n8n's execution context: what they send to the
// service, where the triggers keep their state, what an error carries (n8n's typed errors with
// the HTTP status and the connector's message; never the key, the request or the state), and
// what the credential's Test button says.
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { test } from 'node:test';

const require = createRequire(import.meta.url);
const { NodeApiError, NodeOperationError } = require('n8n-workflow');
const { TikTokNewAccountFollowedTrigger } = require('../dist/nodes/TikTokNewAccountFollowedTrigger/TikTokNewAccountFollowedTrigger.node.js');
const { TikTokAccountUnfollowedTrigger } = require('../dist/nodes/TikTokAccountUnfollowedTrigger/TikTokAccountUnfollowedTrigger.node.js');
const { TikTokGetFollowing } = require('../dist/nodes/TikTokGetFollowing/TikTokGetFollowing.node.js');
const { TikTokFollowingApi } = require('../dist/credentials/TikTokFollowingApi.credentials.js');

const KEY = 'canary-key-0123456789';
const TOKEN = 'canary-token-0123456789';
const STATE = { v: 2, handle: 'alice', watermark: 5, known: ['secret-state-segment'], gaps: [] };
const ITEM = { id: '1', uniqueId: 'bob' };

function context({ mode = 'trigger', params = {}, staticData = {}, reply, items = [{ json: {} }],
	continueOnFail = false, credentials = {}, budget } = {}) {
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
		...(budget ? { getPollBudgetMs: () => budget } : {}),
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

const ok = (items = [ITEM], state = STATE, meta = {}) => ({ statusCode: 200, body: { items, state, meta } });
const refused = (statusCode, type, message, extra = {}) => ({ statusCode, body: { error: { type, message, ...extra } } });
const poll = (ctx, Node = TikTokNewAccountFollowedTrigger) => new Node().poll.call(ctx);
const shown = (error) => JSON.stringify({ m: error.message, d: error.description });
const noSecret = (text) => !text.includes(KEY) && !text.includes(TOKEN) && !text.includes('secret-state-segment');

// ---------------------------------------------------------------- triggers

test('a live poll sends the form to /v1/run and keeps the returned state in place', async () => {
	const staticData = { state: { v: 2, old: true } };
	const ctx = context({ params: { handle: '@alice', firstRun: 'skipExisting', options: { count: 30 } },
		staticData, reply: ok() });
	const out = await poll(ctx);
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
	// n8n 2.36+ commits a durable poll cursor only when the object it handed out changed.
	assert.equal(ctx.staticData, staticData);
	assert.deepEqual(staticData.state, STATE);
});

test('a poll with nothing new returns null and still moves the state on', async () => {
	const ctx = context({ params: { handle: 'alice' }, reply: ok([], { v: 2, next: 1 }) });
	assert.equal(await poll(ctx), null);
	assert.deepEqual(ctx.staticData.state, { v: 2, next: 1 });
});

test('the unfollow trigger keeps its own state the same way', async () => {
	const staticData = {};
	const ctx = context({ params: { handle: 'alice' }, staticData, reply: ok([ITEM], { v: 1, unf: true }) });
	await poll(ctx, TikTokAccountUnfollowedTrigger);
	assert.equal(ctx.sent[0].options.body.operation, 'account_unfollowed');
	assert.deepEqual(staticData.state, { v: 1, unf: true });
});

test('fetch test event runs test mode and leaves the state exactly as it was', async () => {
	const staticData = { state: STATE };
	const ctx = context({ mode: 'manual', params: { handle: 'alice' }, staticData,
		reply: ok([ITEM, ITEM, ITEM], { v: 2, changed: true }) });
	const out = await poll(ctx);
	assert.equal(out[0].length, 3);
	assert.equal(ctx.sent[0].options.body.mode, 'test');
	assert.deepEqual(staticData, { state: STATE });
});

test('a poll waits no longer than the poll budget n8n gives it', async () => {
	const ctx = context({ params: { handle: 'alice' }, reply: ok(), budget: 36_000 });
	await poll(ctx);
	assert.equal(ctx.sent[0].options.timeout, 36_000);
	const older = context({ params: { handle: 'alice' }, reply: ok() }); // n8n 1.x: no budget
	await poll(older);
	assert.equal(older.sent[0].options.timeout, 5 * 60 * 1000);
});

// ---------------------------------------------------------------- errors

test("a refused key is n8n's API error with the HTTP status and the connector's message; the state stays", async () => {
	const staticData = { state: STATE };
	const ctx = context({ params: { handle: 'alice' }, staticData, reply: refused(401,
		'authentication_error', 'API key is invalid or missing. (401: check the API key)', { status: 401 }) });
	await assert.rejects(poll(ctx), (error) => {
		assert.ok(error instanceof NodeApiError);
		// n8n 2.x's poll backoff reads the status: 401 pauses the poller instead of retrying.
		assert.equal(error.httpCode, '401');
		assert.equal(error.message, 'API key is invalid or missing. (401: check the API key)');
		assert.equal(error.description, '(type authentication_error, HTTP 401)');
		assert.ok(noSecret(shown(error)));
		return true;
	});
	assert.deepEqual(staticData, { state: STATE });
});

test('the node keeps no advice of its own per error type: the connector message is the message', async () => {
	for (const [status, type] of [[402, 'insufficient_credits'], [404, 'not_found'], [400, 'input_error'],
		[400, 'state_error'], [502, 'upstream_error'], [500, 'internal_error']]) {
		const ctx = context({ params: { handle: 'alice' }, reply: refused(status, type, `the connector says ${type}`) });
		await assert.rejects(poll(ctx), (error) => {
			assert.equal(error.message, `the connector says ${type}`);
			assert.equal(error.description, `(type ${type}, HTTP ${status})`);
			assert.equal(error.httpCode, String(status));
			return true;
		});
	}
});

test("the connector's advice is shown after its message, once", async () => {
	const advice = 'restore it from the runner\'s history, or pass null to start a new baseline';
	const ctx = context({ params: { handle: 'alice' }, reply: refused(400, 'state_error',
		'state is from a newer version (v 99)', { advice }) });
	await assert.rejects(poll(ctx), (error) => {
		assert.equal(error.message, 'state is from a newer version (v 99)');
		assert.equal(error.description, `What to do: ${advice}. (type state_error, HTTP 400)`);
		return true;
	});
	// An endpoint error's message ends with the advice already: it is not said twice.
	const said = context({ params: { handle: 'alice' }, reply: refused(401, 'authentication_error',
		'API key is invalid or missing. (401: check the API key)', { status: 401, advice: 'check the API key' }) });
	await assert.rejects(poll(said), (error) => {
		assert.equal(error.description, '(type authentication_error, HTTP 401)');
		return true;
	});
	// With the node's own words, the service's message and its advice follow them.
	const token = context({ params: { handle: 'alice' }, reply: refused(401, 'unauthorized', 'this service wants its shared token',
		{ field: 'X-Connector-Token', advice: 'send the token' }) });
	await assert.rejects(poll(token), (error) => {
		assert.match(error.message, /^The connector service refused the credential's Service Token/);
		assert.equal(error.description, 'The service said: this service wants its shared token. What to do: send the token. (type unauthorized, HTTP 401, field X-Connector-Token)');
		return true;
	});
});

test('a rate limit is a 429, with the wait it asked for when it said one', async () => {
	const ctx = context({ params: { handle: 'alice' }, reply: { ...refused(429, 'rate_limited', 'rate limited'),
		headers: { 'Retry-After': '120' } } });
	await assert.rejects(poll(ctx), (error) => {
		assert.equal(error.httpCode, '429');
		assert.deepEqual(error.failure, { cause: 'rate-limited', retryAfterMs: 120_000 });
		return true;
	});
	const plain = context({ params: { handle: 'alice' }, reply: refused(429, 'rate_limited', 'rate limited') });
	await assert.rejects(poll(plain), (error) => error.httpCode === '429' && error.failure === undefined);
});

test('a missing or wrong Service Token is told in words about the credential, with the service\'s own', async () => {
	const answer = refused(401, 'unauthorized', "this service wants its shared token in the X-Connector-Token header",
		{ field: 'X-Connector-Token' });
	for (const serviceToken of ['', TOKEN]) {
		const ctx = context({ params: { handle: 'alice' }, credentials: { serviceToken }, reply: answer });
		await assert.rejects(poll(ctx), (error) => {
			assert.match(error.message, /^The connector service refused the credential's Service Token \(missing or wrong\)/);
			assert.match(error.description, /^The service said: this service wants its shared token .* \(type unauthorized, HTTP 401, field X-Connector-Token\)$/);
			assert.equal(error.httpCode, '401');
			assert.ok(noSecret(shown(error)));
			return true;
		});
	}
});

test('a Service URL with a path is a wrong Service URL, not a private list', async () => {
	const ctx = context({ params: { handle: 'alice' }, reply: refused(404, 'unknown_route',
		'no such route; the routes are GET /healthz, GET /v1/manifests, POST /v1/run, POST /v1/auth/test') });
	await assert.rejects(poll(ctx), (error) => {
		assert.match(error.message, /Service URL reaches the connector service, but not its root/);
		assert.doesNotMatch(shown(error), /private/);
		assert.deepEqual(error.failure, { cause: 'configuration-invalid' });
		return true;
	});
});

test('an answer that is not the connector protocol names the Service URL and its status', async () => {
	const ctx = context({ params: { handle: 'alice' }, reply: { statusCode: 200, body: '<html>n8n</html>' } });
	await assert.rejects(poll(ctx), (error) => {
		assert.ok(error instanceof NodeApiError);
		assert.match(error.message, /^The Service URL answered HTTP 200, but not as the connector service/);
		assert.deepEqual(error.failure, { cause: 'configuration-invalid' });
		return true;
	});
});

test('an unreachable service is named without the request n8n attached to its error', async () => {
	const ctx = context({ params: { handle: 'alice' }, credentials: { serviceUrl: 'http://user:pw@127.0.0.1:1' },
		reply: () => {
			const error = new Error(`connect ECONNREFUSED; request ${JSON.stringify({ headers: { Authorization: `Bearer ${KEY}` }, body: { state: STATE } })}`);
			error.code = 'ECONNREFUSED';
			throw error;
		} });
	await assert.rejects(poll(ctx), (error) => {
		assert.ok(error instanceof NodeOperationError);
		assert.equal(error.message, 'Could not reach the connector service at http://127.0.0.1:1');
		assert.match(error.description, /^ECONNREFUSED: start it with `tiktok-following serve`/);
		assert.deepEqual(error.failure, { cause: 'temporarily-unavailable' });
		assert.ok(noSecret(shown(error)) && !shown(error).includes('pw'));
		return true;
	});
});

test('a non-default DumplingAI base URL travels in credentials.baseUrl, never the key', async () => {
	const ctx = context({ params: { handle: 'alice' }, credentials: { baseUrl: 'http://127.0.0.1:8787' }, reply: ok() });
	await poll(ctx);
	assert.deepEqual(ctx.sent[0].options.body.credentials, { baseUrl: 'http://127.0.0.1:8787' });
});

// ---------------------------------------------------------------- the action

test('Limit reads up to that many accounts; each item carries where to go on', async () => {
	const ctx = context({ params: { handle: 'alice', returnAll: false, limit: 40 },
		reply: ok([{ id: '1' }, { id: '2' }], null, { nextCursor: 1767225600000, hasMore: true }) });
	const [out] = await new TikTokGetFollowing().execute.call(ctx);
	assert.deepEqual(ctx.sent[0].options.body.inputs, { handle: 'alice', maxPages: 500, maxItems: 40 });
	assert.equal(ctx.sent[0].options.body.operation, 'get_tiktok_user_following');
	assert.deepEqual(out, [
		{ json: { id: '1', nextCursor: 1767225600000, hasMore: true }, pairedItem: { item: 0 } },
		{ json: { id: '2', nextCursor: 1767225600000, hasMore: true }, pairedItem: { item: 0 } },
	]);
});

test('Return All reads to the end of the list, and the last run says there is no more', async () => {
	const ctx = context({ params: { handle: 'alice', returnAll: true },
		reply: ok([{ id: '1' }], null, { nextCursor: null, hasMore: false }) });
	const [out] = await new TikTokGetFollowing().execute.call(ctx);
	assert.deepEqual(ctx.sent[0].options.body.inputs, { handle: 'alice', maxPages: 500 });
	assert.deepEqual(out[0].json, { id: '1', nextCursor: null, hasMore: false });
});

test('a Start Cursor typed or mapped as text goes as a number; other text goes as it is, for the connector to name', async () => {
	const ctx = context({ items: [{ json: {} }, { json: {} }], params: { handle: 'alice', limit: 50,
		options: { minTime: ' 1767225600000 ' } }, reply: ok([], null) });
	await new TikTokGetFollowing().execute.call(ctx);
	assert.equal(ctx.sent[0].options.body.inputs.minTime, 1767225600000);
	const typo = context({ params: { handle: 'alice', options: { minTime: 'yesterday' } }, reply: ok([], null) });
	await new TikTokGetFollowing().execute.call(typo);
	assert.equal(typo.sent[0].options.body.inputs.minTime, 'yesterday');
	const empty = context({ params: { handle: 'alice', options: { minTime: '' } }, reply: ok([], null) });
	await new TikTokGetFollowing().execute.call(empty);
	assert.equal('minTime' in empty.sent[0].options.body.inputs, false);
});

test('the action runs once per input item and pairs each account with it', async () => {
	let n = 0;
	const ctx = context({ items: [{ json: {} }, { json: {} }], params: { handle: 'alice' },
		reply: () => ok([{ id: String(++n) }], null) });
	const [out] = await new TikTokGetFollowing().execute.call(ctx);
	assert.deepEqual(out.map((o) => [o.json.id, o.pairedItem.item]), [['1', 0], ['2', 1]]);
});

test('with continue on fail, an action error becomes an item; without, it is thrown with its item index', async () => {
	const bad = refused(400, 'input_error', "handle: 'bad handle' is not a TikTok handle", { field: 'handle' });
	const ctx = context({ continueOnFail: true, params: { handle: 'bad handle' }, reply: bad });
	const [out] = await new TikTokGetFollowing().execute.call(ctx);
	assert.deepEqual(out, [{ json: { error: "handle: 'bad handle' is not a TikTok handle" }, pairedItem: { item: 0 } }]);
	const strict = context({ items: [{ json: {} }, { json: {} }], params: { handle: 'bad handle' },
		reply: (options) => (strict.sent.length === 1 ? ok() : bad) });
	await assert.rejects(new TikTokGetFollowing().execute.call(strict), (error) => {
		assert.ok(error instanceof NodeApiError);
		assert.equal(error.context.itemIndex, 1);
		assert.equal(error.description, '(type input_error, HTTP 400, field handle)');
		return true;
	});
});

// ---------------------------------------------------------------- the credential's Test button

/** n8n's reading of a declarative credential test (CredentialsTester, n8n 1.x and 2.x): the
 *  first rule whose key has its value in the answer is the error; none, and the test passed. */
function verdict(test, body) {
	const get = (object, path) => path.split('.').reduce((o, k) => (o == null ? undefined : o[k]), object);
	for (const rule of test.rules) {
		if (get(body, rule.properties.key) === rule.properties.value) return { status: 'Error', message: rule.properties.message };
	}
	return { status: 'OK', message: 'Connection successful!' };
}

test('the credential tests itself, with POST /v1/auth/test, reading every answer', () => {
	const { request } = new TikTokFollowingApi().test;
	assert.deepEqual(request, { baseURL: '={{$credentials.serviceUrl}}', url: '/v1/auth/test', method: 'POST',
		body: { credentials: { baseUrl: '={{$credentials.baseUrl}}' } }, ignoreHttpStatusErrors: true });
	// A test on the credential is the one n8n finds for a package in its custom folder; a node's
	// credentialTest method is found only for packages installed from npm.
	for (const Node of [TikTokGetFollowing, TikTokNewAccountFollowedTrigger, TikTokAccountUnfollowedTrigger]) {
		const node = new Node();
		assert.deepEqual(node.description.credentials, [{ name: 'tikTokFollowingApi', required: true }]);
		assert.equal(node.methods, undefined);
	}
});

test('Test: a refused key, a refused token, a path in the Service URL and another server each in their own words', () => {
	const { test: check } = new TikTokFollowingApi();
	const said = (type) => ({ error: { type, message: `the service says ${type}` } });
	const results = {
		works: verdict(check, { ok: true, message: 'the API key was accepted', creditsUsed: 0 }),
		key: verdict(check, said('authentication_error')),
		token: verdict(check, said('unauthorized')),
		path: verdict(check, said('unknown_route')),
		other: verdict(check, '<html>another server</html>'),
		dumplingai: verdict(check, said('transport_error')),
	};
	assert.deepEqual(results.works, { status: 'OK', message: 'Connection successful!' });
	assert.match(results.key.message, /^DumplingAI refused the credential's API Key/);
	assert.match(results.token.message, /^The connector service refused the credential's Service Token \(missing or wrong\)/);
	assert.match(results.path.message, /^The Service URL reaches the connector service, but not its root/);
	assert.match(results.other.message, /^The connection test did not pass/);
	assert.deepEqual(results.dumplingai, results.other);
	assert.equal(new Set(Object.values(results).map((r) => r.message)).size, 5);
});

test('the credential sends the key as Bearer and the token beside it', () => {
	const cred = new TikTokFollowingApi();
	assert.equal(cred.authenticate.properties.headers.Authorization, '=Bearer {{$credentials.apiKey}}');
	assert.equal(cred.authenticate.properties.headers['X-Connector-Token'], '={{$credentials.serviceToken}}');
	assert.deepEqual(cred.icon, { light: 'file:tiktok.svg', dark: 'file:tiktok.dark.svg' });
});
