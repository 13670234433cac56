// The MDP floor: the least a broker can do and still speak carico's protocol
// to the same clients and workers. It measures what the protocol itself costs
// on top of the raw zmq::proxy, so that carico-broker's own cost can be told
// apart from it. Not a broker to run: no liveness, no credit, no queue, no
// records, no re-dispatch. Dropped without a word: a request with no worker,
// not made of a header and one payload frame, or with no numeric `id`; a
// REPLY with no header map holding `request`. The bench's clients and
// workers always send what it needs.
#pragma once

#include <string>

namespace carico {

// Serves until SIGINT/SIGTERM. Per request it does what any carico broker
// must: reads the client's MDPC01 envelope and the header's `id`, sends an
// MDPW01 REQUEST (the client header plus `request`) to the next worker that
// said READY, round robin, and answers the client from the worker's REPLY
// with a header of `id`, `code` and `status`. It heartbeats the workers every
// heartbeat_ms and answers `mmi.workers` (every known worker "ready").
int run_mdp_floor(const std::string& frontend_ep, const std::string& backend_ep, long heartbeat_ms);

}  // namespace carico
