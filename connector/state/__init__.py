"""The triggers' state: what each keeps between polls, in the form a runner keeps (JSON) and
the form a database keeps (a small row, and parts as bytes). It uses the core alone; the
operations and the embedded store use it, storage never does.

    envelope   the contract both states keep (to_json/from_json, to_stored/from_stored) and
               the checks that refuse damaged, foreign or newer state
    gaps       ranges still to read, and the backoff of failed reads
    prints     fingerprints, and the loss bound they give
    parts      the memory's parts as bytes (Golomb-Rice coded sets, version-2 segments)
    memory     the accounts the follow trigger remembers
    roster     the accounts the unfollow trigger tracks, as last seen, in blocks
    followed   the "New Account Followed" state
    unfollowed the "Account Unfollowed" state

Import the module you need (`from connector.state.followed import FollowState`): a call of one
trigger does not pay for importing the other's.
"""

