// libFuzzer target: client-message decoding (requests and replies) and the
// round trip decode -> encode -> decode of every request that decodes.
#include <cstdlib>

#include "shared/codec.hpp"
#include "shared/raw_map.hpp"
#include "tests/fuzz/fuzz_frames.hpp"

namespace {

void check(bool condition) {
  if (!condition) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace carico;
  {
    client_envelope envelope;
    decoded<client_request> request =
        decode_client_request(fuzz::split_frames(data, size), &envelope);
    const std::string& service = envelope.service;
    // The broker's mode must accept exactly what decoding accepts, with the
    // same error, and a header it keeps encoded must decode to the same map.
    client_envelope kept_envelope;
    raw_map handed;  // what the codec read, handed over as the broker takes it
    decoded<client_request> kept = decode_client_request(
        fuzz::split_frames(data, size), &kept_envelope, header_mode::keep_raw, &handed);
    check(static_cast<bool>(kept) == static_cast<bool>(request));
    check(kept.error == request.error);
    check(kept_envelope.service == service);
    check(kept_envelope.from == envelope.from);
    // A dialect is never guessed: a message decodes only under its signature.
    if (request) check(envelope.from == request->from);
    if (kept) {
      check(!kept->head_raw || kept->head.size() == 0);
      if (kept->head_raw) {
        const raw_view now = handed.over(kept->head_frame.data());
        check(now.size() == request->head.size());
        check(now.get_uint("id") == request->head.get_uint("id"));
        check(now.get_string("client") == request->head.get_string("client"));
      }
      check(decode_head(*kept).encode_string() == request->head.encode_string());
    }
    if (request) {
      check(!request->service.empty() && request->service.size() <= 255);
      check(request->service == service);
      const std::string payload = request->payload.to_string();
      const std::string head = request->head.encode_string();
      const std::size_t frames = request->body_frames;
      zmq::multipart_t again;
      if (request->from == dialect::mdp) {
        check(request->head.size() == 0 && request->head_frame.size() == 0);
        check(request->more.size() + (frames > 0 ? 1 : 0) == frames);
        std::vector<zmq::message_t> body;
        if (frames > 0) body.push_back(std::move(request->payload));
        for (zmq::message_t& f : request->more) body.push_back(std::move(f));
        again = encode_mdp_request(request->service, std::move(body));
      } else {
        check(frames == 1 && request->more.empty());
        again = encode_client_request(request->service, request->head,
                                      std::move(request->payload));
      }
      decoded<client_request> second = decode_client_request(std::move(again));
      check(static_cast<bool>(second));
      check(second->service == service);
      check(second->from == request->from);
      check(second->body_frames == frames);
      check(second->payload.to_string() == payload);
      check(second->head.encode_string() == head);
      (void)second->head.to_json();
    } else {
      check(!request.error.empty());
    }
  }
  {
    decoded<client_reply> reply = decode_client_reply(fuzz::split_frames(data, size));
    if (reply) {
      const std::size_t body = reply->body.size();
      zmq::multipart_t again =
          reply->from == dialect::mdp
              ? encode_mdp_reply(reply->service, std::move(reply->body))
              : encode_client_reply(reply->service, reply->head, std::move(reply->body));
      decoded<client_reply> second = decode_client_reply(std::move(again));
      check(static_cast<bool>(second));
      check(second->body.size() == body);
    }
  }
  return 0;
}
