// Talking to the connector service (`tiktok-following serve`) with n8n's own HTTP helper.
// No other dependency, no environment or file access: the key comes from the n8n credential
// and travels only in the Authorization header that n8n adds.

import {
	NodeOperationError,
	type IDataObject,
	type IExecuteFunctions,
	type INode,
	type IPollFunctions,
} from 'n8n-workflow';

export const CREDENTIAL = 'tikTokFollowingApi';
const PRODUCTION = 'https://app.dumplingai.com';
const TIMEOUT_MS = 5 * 60 * 1000;

type Context = IExecuteFunctions | IPollFunctions;

/** The connector's answer to a run: the emitted items, the trigger state and the meta. */
export interface RunAnswer {
	items: IDataObject[];
	state: IDataObject | null;
	meta: IDataObject;
}

/** POST one invoke request to the service's /v1/run; the answer, or an n8n error that carries
 *  the connector's one-line message and never the request or the state. */
export async function runOperation(this: Context, request: IDataObject): Promise<RunAnswer> {
	const credentials = await this.getCredentials(CREDENTIAL);
	const service = String(credentials.serviceUrl ?? '').replace(/\/+$/, '');
	const baseUrl = String(credentials.baseUrl ?? '').trim();
	const body: IDataObject = { ...request, platform: 'n8n' };
	if (baseUrl && baseUrl !== PRODUCTION) body.credentials = { baseUrl };
	let response: { statusCode?: number; body?: unknown };
	try {
		response = (await this.helpers.httpRequestWithAuthentication.call(this, CREDENTIAL, {
			method: 'POST',
			url: `${service}/v1/run`,
			body,
			json: true,
			returnFullResponse: true,
			ignoreHttpStatusErrors: true,
			timeout: TIMEOUT_MS,
		})) as { statusCode?: number; body?: unknown };
	} catch (error) {
		// n8n's own error for a failed request holds the request (headers included): only its
		// cause goes into ours.
		throw unreachable(this.getNode(), service, error);
	}
	const answer = response.body as IDataObject | undefined;
	const status = response.statusCode ?? 0;
	if (status >= 200 && status < 300 && answer && Array.isArray(answer.items)) {
		return answer as unknown as RunAnswer;
	}
	throw connectorError(this.getNode(), status, answer);
}

/** The connector's error as an n8n error: its message, its type and HTTP status, nothing else. */
export function connectorError(node: INode, status: number, answer: unknown): NodeOperationError {
	const error = (answer as IDataObject | undefined)?.error as IDataObject | undefined;
	if (!error || typeof error.message !== 'string') {
		return new NodeOperationError(
			node,
			`The connector service answered HTTP ${status} without a connector answer; check the Service URL`,
		);
	}
	const details = [`type ${String(error.type)}`, `HTTP ${status}`];
	if (typeof error.field === 'string') details.push(`field ${error.field}`);
	return new NodeOperationError(node, oneLine(error.message), {
		description: `${details.join(', ')}. ${advice(String(error.type))}`,
	});
}

function unreachable(node: INode, service: string, error: unknown): NodeOperationError {
	const code = (error as { code?: unknown; cause?: { code?: unknown } } | undefined) ?? {};
	const cause = String(code.code ?? code.cause?.code ?? 'no answer');
	// The cause goes in the description: n8n swaps a message naming a code like ECONNREFUSED
	// for a generic one that does not say which service.
	return new NodeOperationError(node, `Could not reach the connector service at ${shownUrl(service)}`, {
		description: `${cause}: start it with \`tiktok-following serve\`, or fix the Service URL of the credential.`,
	});
}

function advice(type: string): string {
	switch (type) {
		case 'input_error':
		case 'configuration_error':
			return 'Fix the field it names; nothing was sent and no credit was spent.';
		case 'state_error':
			return 'The trigger state kept by this node is damaged; deactivate and activate the workflow to start a new baseline.';
		case 'authentication_error':
			return 'Check the API key of the credential.';
		case 'unauthorized':
			return 'Check the Service Token of the credential.';
		case 'insufficient_credits':
			return 'Top up your DumplingAI credits.';
		case 'not_found':
			return 'The following list is private, hidden, or the handle does not exist.';
		default:
			return 'Try again later; the trigger state is unchanged.';
	}
}

function oneLine(text: string): string {
	const line = text.split(/\s+/).join(' ').trim();
	return line.length <= 1000 ? line : `${line.slice(0, 999)}…`;
}

/** A URL as it may be shown: without user:password@. */
function shownUrl(url: string): string {
	return url.replace(/\/\/[^/@]*@/, '//');
}

/** The operation's inputs from the node's parameters: the form fields, then the options
 *  added. Blank values are left out (the connector treats them as not set). */
export function inputsFrom(
	this: Context,
	formFields: string[],
	itemIndex?: number,
): IDataObject {
	const get = (name: string, fallback: unknown) =>
		itemIndex === undefined
			? (this as IPollFunctions).getNodeParameter(name, fallback)
			: (this as IExecuteFunctions).getNodeParameter(name, itemIndex, fallback);
	const inputs: IDataObject = {};
	for (const name of formFields) inputs[name] = get(name, '') as IDataObject[string];
	Object.assign(inputs, get('options', {}) as IDataObject);
	for (const [name, value] of Object.entries(inputs)) {
		if (value === '' || value === null || value === undefined) delete inputs[name];
	}
	return inputs;
}
