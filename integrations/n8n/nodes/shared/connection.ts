// The credential's Test button: POST /v1/auth/test on the connector service, which proves the
// DumplingAI key for 0 credits. A declarative test (ICredentialTestRequest) shows n8n's own
// words for a status ("Authorization failed" for both a refused key and a refused Service
// Token, an error code for a service that is down); this one shows the connector's message,
// with the node's words for what only the node knows.

import type {
	ICredentialsDecrypted,
	ICredentialTestFunctions,
	IDataObject,
	INodeCredentialTestResult,
} from 'n8n-workflow';

import {
	connectorErrorOf,
	customBaseUrl,
	errorCode,
	nodeWords,
	serviceUrl,
	shownUrl,
	type ServiceResponse,
} from './transport';

/** The connection test takes one request to DumplingAI (with the service's retries). */
const TEST_TIMEOUT_MS = 2 * 60 * 1000;

/** Test a credential against the service it names; each failure in its own words. */
export async function testConnection(
	this: ICredentialTestFunctions,
	credential: ICredentialsDecrypted,
): Promise<INodeCredentialTestResult> {
	const data = credential.data ?? {};
	const service = serviceUrl(data.serviceUrl);
	const token = String(data.serviceToken ?? '');
	const baseUrl = customBaseUrl(data.baseUrl);
	let response: ServiceResponse;
	try {
		// A credential test gets no other HTTP helper than `request` (ICredentialTestFunctions):
		// the rule's replacement, httpRequest, does not exist here.
		// eslint-disable-next-line @n8n/community-nodes/no-deprecated-workflow-functions
		response = (await this.helpers.request({
			method: 'POST',
			uri: `${service}/v1/auth/test`,
			headers: {
				Authorization: `Bearer ${String(data.apiKey ?? '')}`,
				...(token ? { 'X-Connector-Token': token } : {}),
			},
			body: baseUrl ? { credentials: { baseUrl } } : {},
			json: true,
			resolveWithFullResponse: true,
			simple: false,
			timeout: TEST_TIMEOUT_MS,
		})) as ServiceResponse;
	} catch (error) {
		return {
			status: 'Error',
			message: `Could not reach the connector service at ${shownUrl(service)} (${errorCode(error)}): start it with tiktok-following serve, or fix the Service URL`,
		};
	}
	return testResult(response, token !== '');
}

/** A connection test's answer as n8n shows it. */
export function testResult(response: ServiceResponse, tokenSet: boolean): INodeCredentialTestResult {
	const status = response.statusCode ?? 0;
	const body = response.body as IDataObject | undefined;
	if (status >= 200 && status < 300 && body?.ok === true) {
		return { status: 'OK', message: String(body.message ?? 'Connection successful') };
	}
	const error = connectorErrorOf(body);
	const words = nodeWords(status, error, tokenSet);
	if (words) return { status: 'Error', message: error ? `${words}. The service said: ${error.message}` : words };
	return { status: 'Error', message: error?.message ?? `The connector service answered HTTP ${status}` };
}
