// Talking to the connector service (`tiktok-following serve`) with n8n's own HTTP helper.
// No other dependency, no environment or file access: the key comes from the n8n credential
// and travels only in the Authorization header that n8n adds.
//
// Errors carry the connector's own message, what to do (the connector's `advice`) and the
// HTTP status (NodeApiError), so n8n shows what the connector said and its poll backoff can
// tell a refused credential (401, a pause) from a rate limit (429) or an outage (5xx). The
// node keeps no advice per error type; it adds words only for what only it knows: that the service did not answer, that it refused the Service Token, that the
// Service URL does not lead to it.

import {
	NodeApiError,
	NodeOperationError,
	type Failure,
	type IDataObject,
	type IExecuteFunctions,
	type INode,
	type IPollFunctions,
	type JsonObject,
} from 'n8n-workflow';

import { NOT_ROOT, notTheService, TOKEN_REFUSED } from './words';

export const CREDENTIAL = 'tikTokFollowingApi';
const PRODUCTION = 'https://app.dumplingai.com';
/** The longest a run may take: a poll's page budget of slow pages, with retries. */
export const TIMEOUT_MS = 5 * 60 * 1000;

type Context = IExecuteFunctions | IPollFunctions;
export type ServiceError = NodeApiError | NodeOperationError;

/** How a node's form becomes the operation's inputs (written by scripts/generate.mjs). */
export interface InputPlan {
	/** Fields on the form itself; the rest are under "Options", sent once added. */
	formFields: string[];
	/** Cursor fields: text on the form, sent as numbers. */
	cursorFields: string[];
	/** The page cap that Return All and Limit stand for; 0 when the form has no Return All. */
	maxPages: number;
}

/** The connector's answer to a run: the emitted items, the trigger state and the meta. */
export interface RunAnswer {
	items: IDataObject[];
	state: IDataObject | null;
	meta: IDataObject;
}

/** An HTTP answer as n8n's helpers give it with returnFullResponse / resolveWithFullResponse. */
interface ServiceResponse {
	statusCode?: number;
	headers?: IDataObject;
	body?: unknown;
}

/** The connector's `error` object, when the answer is one. */
interface ConnectorErrorBody {
	type: string;
	message: string;
	/** What to do, from the connector's error table. */
	advice?: string;
	field?: string;
}

/** POST one invoke request to the service's /v1/run: the answer, or the error to throw (never
 *  thrown here, so a caller decides: an action may turn it into an item). */
export async function runOperation(
	this: Context,
	request: IDataObject,
	timeoutMs: number = TIMEOUT_MS,
): Promise<{ answer: RunAnswer } | { error: ServiceError }> {
	const credentials = await this.getCredentials(CREDENTIAL);
	const service = serviceUrl(credentials.serviceUrl);
	const body: IDataObject = { ...request, platform: 'n8n' };
	const baseUrl = customBaseUrl(credentials.baseUrl);
	if (baseUrl) body.credentials = { baseUrl };
	let response: ServiceResponse;
	try {
		response = (await this.helpers.httpRequestWithAuthentication.call(this, CREDENTIAL, {
			method: 'POST',
			url: `${service}/v1/run`,
			body,
			json: true,
			returnFullResponse: true,
			ignoreHttpStatusErrors: true,
			timeout: timeoutMs,
		})) as ServiceResponse;
	} catch (error) {
		// n8n's own error for a failed request holds the request (headers included): only its
		// code goes into ours.
		return { error: unreachable(this.getNode(), service, error) };
	}
	const status = response.statusCode ?? 0;
	const answer = response.body as IDataObject | undefined;
	if (status >= 200 && status < 300 && answer && Array.isArray(answer.items)) {
		return { answer: answer as unknown as RunAnswer };
	}
	return { error: serviceError(this.getNode(), response) };
}

/** The service URL without a trailing slash. */
function serviceUrl(value: unknown): string {
	return String(value ?? '').trim().replace(/\/+$/, '');
}

/** The DumplingAI base URL to send, when it is not the production one. */
function customBaseUrl(value: unknown): string | undefined {
	const url = String(value ?? '').trim();
	return url && url !== PRODUCTION ? url : undefined;
}

/** The connector's error object in an answer, if the answer is one. */
function connectorErrorOf(body: unknown): ConnectorErrorBody | undefined {
	const error = (body as IDataObject | undefined)?.error as IDataObject | undefined;
	if (!error || typeof error.message !== 'string' || typeof error.type !== 'string') return undefined;
	return {
		type: error.type,
		message: oneLine(error.message),
		...(typeof error.advice === 'string' && error.advice.trim() ? { advice: oneLine(error.advice) } : {}),
		...(typeof error.field === 'string' ? { field: error.field } : {}),
	};
}

/** What only the node can say about a service answer (its words come before the connector's
 *  message), or undefined when the connector's message says it all. */
function nodeWords(status: number, error: ConnectorErrorBody | undefined): string | undefined {
	if (!error) return notTheService(status);
	if (error.type === 'unauthorized') return TOKEN_REFUSED;
	if (error.type === 'unknown_route') return NOT_ROOT;
	return undefined;
}

/** A service answer that is not a result, as an n8n error with its HTTP status. */
function serviceError(node: INode, response: ServiceResponse): ServiceError {
	const status = response.statusCode ?? 0;
	const error = connectorErrorOf(response.body);
	const words = nodeWords(status, error);
	const details = error ? [`type ${error.type}`, `HTTP ${status}`] : [`HTTP ${status}`];
	if (error?.field) details.push(`field ${error.field}`);
	const message = words ?? error?.message ?? `The connector service answered HTTP ${status}`;
	// The connector's advice, unless its message already ends with it (an endpoint error's does).
	const advice = error?.advice && !error.message.includes(error.advice) ? `What to do: ${error.advice}.` : '';
	const description = [words && error ? `The service said: ${sentence(error.message)}` : '', advice, `(${details.join(', ')})`]
		.filter(Boolean)
		.join(' ');
	return new NodeApiError(node, (error ?? { message, status }) as unknown as JsonObject, {
		message,
		description,
		httpCode: String(status),
		...failureOf(status, error, response.headers),
	});
}

/** What n8n's poll backoff cannot tell from the status alone: a wrong Service URL needs
 *  someone to fix the credential (no point polling it every minute), and a rate limit may say
 *  how long to wait. Everything else n8n reads from the HTTP status. */
function failureOf(
	status: number,
	error: ConnectorErrorBody | undefined,
	headers: IDataObject | undefined,
): { failure?: Failure } {
	if (!error || error.type === 'unknown_route') return { failure: { cause: 'configuration-invalid' } };
	const retryAfter = header(headers, 'retry-after')?.trim();
	if (status === 429 && retryAfter && /^\d+$/.test(retryAfter)) {
		return { failure: { cause: 'rate-limited', retryAfterMs: Number(retryAfter) * 1000 } };
	}
	return {};
}

/** The service did not answer at all: where we tried, and the network's code. */
function unreachable(node: INode, service: string, error: unknown): NodeOperationError {
	const cause = errorCode(error);
	// The code goes in the description: n8n swaps a message naming a code like ECONNREFUSED
	// for a generic one that does not say which service.
	return new NodeOperationError(node, `Could not reach the connector service at ${shownUrl(service)}`, {
		description: `${cause}: start it with \`tiktok-following serve\`, or fix the credential's Service URL.`,
		failure: { cause: 'temporarily-unavailable' },
	});
}

/** The network error code of a failed request (ECONNREFUSED, ENOTFOUND...), never its text. */
function errorCode(error: unknown): string {
	const e = (error as { code?: unknown; cause?: { code?: unknown } } | undefined) ?? {};
	const code = e.code ?? e.cause?.code;
	return typeof code === 'string' && /^[A-Z_]+$/.test(code) ? code : 'no answer';
}

function header(headers: IDataObject | undefined, name: string): string | undefined {
	for (const [key, value] of Object.entries(headers ?? {})) {
		if (key.toLowerCase() === name) return Array.isArray(value) ? String(value[0]) : String(value);
	}
	return undefined;
}

/** Text that ends as a sentence does, so another can follow it. */
function sentence(text: string): string {
	return /[.!?)]$/.test(text) ? text : `${text}.`;
}

function oneLine(text: string): string {
	const line = text.split(/\s+/).join(' ').trim();
	return line.length <= 1000 ? line : `${line.slice(0, 999)}…`;
}

/** A URL as it may be shown: without user:password@. */
function shownUrl(url: string): string {
	return url.replace(/\/\/[^/@]*@/, '//');
}

/** The operation's inputs from the node's parameters: the form fields, Return All / Limit,
 *  then the options added. Blank values are left out (the connector treats them as not set);
 *  a cursor given as text goes as a number when it is one (else as it is, for the connector
 *  to name). */
export function inputsFrom(this: Context, plan: InputPlan, itemIndex?: number): IDataObject {
	const get = (name: string, fallback: unknown) =>
		itemIndex === undefined
			? (this as IPollFunctions).getNodeParameter(name, fallback)
			: (this as IExecuteFunctions).getNodeParameter(name, itemIndex, fallback);
	const inputs: IDataObject = {};
	for (const name of plan.formFields) inputs[name] = get(name, '') as IDataObject[string];
	if (plan.maxPages) {
		inputs.maxPages = plan.maxPages;
		if (!get('returnAll', false)) inputs.maxItems = get('limit', 0) as number;
	}
	Object.assign(inputs, get('options', {}) as IDataObject);
	for (const name of plan.cursorFields) {
		const value = inputs[name];
		if (typeof value === 'string' && /^\s*-?\d+(\.\d+)?\s*$/.test(value)) inputs[name] = Number(value);
	}
	for (const [name, value] of Object.entries(inputs)) {
		if (value === '' || value === null || value === undefined) delete inputs[name];
	}
	return inputs;
}
