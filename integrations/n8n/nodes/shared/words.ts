// What only the node can say about an answer of the connector service: the node's errors and
// the credential's Test button use the same words. Everything else is the connector's own: its
// message, and its advice (what to do, sent with every error).

export const TOKEN_REFUSED =
	"The connector service refused the credential's Service Token (missing or wrong): set it to the service's TIKTOK_FOLLOWING_SERVE_TOKEN";

export const NOT_ROOT =
	"The Service URL reaches the connector service, but not its root: give the credential's Service URL without a path";

export const KEY_REFUSED = "DumplingAI refused the credential's API Key (check it, and the Base URL)";

export const NO_PROOF =
	'The connection test did not pass: the connector service answered with an error of its own (a run of a node shows its message), or the Service URL is not the connector service (tiktok-following serve)';

/** The Service URL answered, but not as the connector service. */
export function notTheService(status: number): string {
	return `The Service URL answered HTTP ${status}, but not as the connector service (tiktok-following serve): check the credential's Service URL`;
}
