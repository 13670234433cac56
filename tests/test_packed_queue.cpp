// packed_queue: requests go in and come back out whole and in order, across
// chunk boundaries, with large payloads kept as frames, in little memory.
// block_recycler: the broker's other request store, requests_, recycles its
// nodes (at the end of this file).
#include <catch2/catch.hpp>

#include <string>
#include <unordered_map>
#include <vector>

#include "broker/block_recycler.hpp"
#include "broker/packed_queue.hpp"

using namespace carico;
using namespace std::string_literals;

namespace {

request make_request(std::uint64_t number, std::string payload, std::string head = "\x81\xa2id\x01",
                     std::string client = "\x00\x6b\x8b\x45\x67"s, std::string key = "") {
  request r;
  r.number = number;
  r.client = std::move(client);
  r.key = std::move(key);
  r.id = "\x01";
  r.head = zmq::message_t(head.data(), head.size());
  r.payload = zmq::message_t(payload.data(), payload.size());
  r.attempts = number % 3;
  r.quota_bytes = payload.size() + head.size() + 512;
  r.received_ms = 1700000000000 + static_cast<std::int64_t>(number);
  return r;
}

void check_same(const request& got, std::uint64_t number, const std::string& payload,
                const std::string& head = "\x81\xa2id\x01") {
  CHECK(got.number == number);
  CHECK(got.payload.to_string() == payload);
  CHECK(got.head.to_string() == head);
  CHECK(got.id == "\x01");
  CHECK(got.attempts == number % 3);
  CHECK(got.quota_bytes == payload.size() + head.size() + 512);
  CHECK(got.received_ms == 1700000000000 + static_cast<std::int64_t>(number));
  CHECK(got.target == nullptr);
  CHECK(got.holder == nullptr);
}

}  // namespace

TEST_CASE("packed requests come back whole and in order", "[packed_queue]") {
  packed_queue q(64);  // small chunks: most entries get one of their own or share few
  CHECK(q.empty());
  CHECK(q.last_number() == 0);
  const std::string big(packed_queue::large_payload + 1, 'L');
  const std::string edge(packed_queue::large_payload, 'E');
  std::vector<std::string> payloads = {"", "a", std::string(40, 'x'), big, edge, "tail"};
  for (std::size_t i = 0; i < payloads.size(); ++i) q.push(make_request(i + 1, payloads[i]));
  request with_key = make_request(7, "k", "", "", "client\0id"s);
  with_key.id.clear();
  q.push(std::move(with_key));
  CHECK(q.size() == 7);
  CHECK(q.last_number() == 7);

  std::vector<std::uint64_t> seen;
  q.for_each([&seen](const packed_view& v) {
    seen.push_back(v.number);
    return true;
  });
  CHECK(seen == std::vector<std::uint64_t>{1, 2, 3, 4, 5, 6, 7});

  for (std::size_t i = 0; i < payloads.size(); ++i) {
    request r = q.pop();
    check_same(r, i + 1, payloads[i]);
    CHECK(r.client == "\x00\x6b\x8b\x45\x67"s);
    CHECK(r.key.empty());
  }
  request last = q.pop();
  CHECK(last.number == 7);
  CHECK(last.client.empty());
  CHECK(last.key == "client\0id"s);
  CHECK(last.id.empty());
  CHECK(last.head.size() == 0);
  CHECK(last.payload.to_string() == "k");
  CHECK(q.empty());
}

TEST_CASE("numbers and times may go backwards between entries", "[packed_queue]") {
  packed_queue q(128);
  const std::uint64_t numbers[] = {1000000000000, 5, 6, 1ull << 63, 2};
  const std::int64_t times[] = {1700000000000, 0, 1700000000000, -5, 42};
  for (int i = 0; i < 5; ++i) {
    request r = make_request(numbers[i], "x");
    r.received_ms = times[i];
    q.push(std::move(r));
  }
  CHECK(q.last_number() == 2);
  for (int round = 0; round < 2; ++round) {  // twice: for_each, then pop
    int i = 0;
    q.for_each([&](const packed_view& v) {
      CHECK(v.number == numbers[i]);
      CHECK(v.received_ms == times[i]);
      ++i;
      return true;
    });
    CHECK(i == 5);
  }
  for (int i = 0; i < 5; ++i) {
    request r = q.pop();
    CHECK(r.number == numbers[i]);
    CHECK(r.received_ms == times[i]);
    if (i == 1) {  // what is left is still read right after a pop
      std::vector<std::uint64_t> rest;
      q.for_each([&rest](const packed_view& v) {
        rest.push_back(v.number);
        return true;
      });
      CHECK(rest == std::vector<std::uint64_t>{6, 1ull << 63, 2});
    }
  }
}

TEST_CASE("the id is read back from the header, the last one when repeated", "[packed_queue]") {
  packed_queue q;
  q.push(make_request(1, "a", "\x82\xa2id\x01\xa5title\xa1t"s));
  q.push(make_request(2, "b", "\x82\xa2id\x01\xa2id\xa3six"s));  // raw_map refuses: decoded
  q.push(make_request(3, "c", "\x81\xa5title\xa1t"s));             // no id
  CHECK(q.pop().id == "\x01"s);
  CHECK(q.pop().id == "\xa3six"s);
  CHECK(q.pop().id.empty());
}

TEST_CASE("a large payload keeps its frame, a small one is copied", "[packed_queue]") {
  packed_queue q;
  request large = make_request(1, std::string(100000, 'z'));
  const void* large_data = large.payload.data();
  request small = make_request(2, std::string(100, 's'));
  const void* small_data = small.payload.data();
  q.push(std::move(large));
  q.push(std::move(small));
  request a = q.pop();
  request b = q.pop();
  CHECK(a.payload.data() == large_data);  // moved, not copied
  CHECK(a.payload.size() == 100000);
  CHECK(b.payload.data() != small_data);
  CHECK(b.payload.to_string() == std::string(100, 's'));
}

TEST_CASE("for_each stops when the visitor says so", "[packed_queue]") {
  packed_queue q;
  for (std::uint64_t n = 1; n <= 10; ++n) q.push(make_request(n, "p" + std::to_string(n)));
  std::vector<std::uint64_t> seen;
  q.for_each([&seen](const packed_view& v) {
    seen.push_back(v.number);
    return v.number < 4;
  });
  CHECK(seen == std::vector<std::uint64_t>{1, 2, 3, 4});
  std::size_t bytes = 0;
  q.for_each([&bytes](const packed_view& v) {
    if (v.number == 10) bytes = v.payload_bytes;
    return true;
  });
  CHECK(bytes == 3);
}

TEST_CASE("interleaved pushes and pops across many chunks keep FIFO order", "[packed_queue]") {
  packed_queue q(1024);
  std::uint64_t next_in = 1;
  std::uint64_t next_out = 1;
  auto payload_of = [](std::uint64_t n) { return std::string(n % 700, static_cast<char>('a' + n % 26)); };
  for (int round = 0; round < 50; ++round) {
    for (int i = 0; i < 37; ++i, ++next_in) q.push(make_request(next_in, payload_of(next_in)));
    for (int i = 0; i < 29; ++i, ++next_out) check_same(q.pop(), next_out, payload_of(next_out));
  }
  while (!q.empty()) {
    check_same(q.pop(), next_out, payload_of(next_out));
    ++next_out;
  }
  CHECK(next_out == next_in);
  CHECK(q.chunk_bytes_held() <= 1024);  // drained: at most the one chunk kept for reuse

  // An entry larger than a chunk while the kept chunk is empty replaces it.
  const std::string huge(5000, 'h');
  q.push(make_request(next_in, huge));
  check_same(q.pop(), next_in, huge);
  CHECK(q.empty());
}

TEST_CASE("a parked request costs its bytes and a few dozen more", "[packed_queue][memory]") {
  packed_queue q;
  constexpr std::size_t count = 100000;
  const std::string payload(100, 'p');
  for (std::uint64_t n = 1; n <= count; ++n) q.push(make_request(n, payload));
  // Per request: 100 B payload, 5 B header, 5 B routing id, and eight
  // one-byte varints (number, time, quota and payload size are deltas from
  // the request before); the last chunk is partly empty.
  const double per_request = static_cast<double>(q.chunk_bytes_held()) / count;
  INFO("bytes per parked request: " << per_request);
  CHECK(per_request < 100 + 5 + 5 + 8 + 3);
  CHECK(q.size() == count);
}

TEST_CASE("block_recycler hands a freed block to the next allocation of its size, up to its cap") {
  block_recycler blocks(2);
  void* a = blocks.allocate(48);  // the first single object: 48 bytes are recycled
  void* b = blocks.allocate(48);
  void* c = blocks.allocate(48);
  blocks.deallocate(a, 48);
  blocks.deallocate(b, 48);
  blocks.deallocate(c, 48);  // past the cap of 2: back to the heap
  CHECK(blocks.kept() == 2);
#ifdef CARICO_ASAN
  // Kept, but a use after free all the same.
  CHECK(__asan_address_is_poisoned(a));
  CHECK(__asan_address_is_poisoned(b));
#endif
  CHECK(blocks.allocate(48) == b);  // the last kept first
  CHECK(blocks.allocate(48) == a);
#ifdef CARICO_ASAN
  CHECK_FALSE(__asan_address_is_poisoned(a));
#endif
  CHECK(blocks.kept() == 0);
  // Other sizes are never kept.
  void* other = blocks.allocate(16);
  blocks.deallocate(other, 16);
  CHECK(blocks.kept() == 0);
  blocks.deallocate(a, 48);
  blocks.deallocate(b, 48);
  blocks.release();
  CHECK(blocks.kept() == 0);
}

TEST_CASE("requests_ over a recycling_allocator: nodes are reused, the map behaves as ever") {
  using value = std::pair<const std::uint64_t, request>;
  block_recycler nodes(8);
  std::unordered_map<std::uint64_t, request, std::hash<std::uint64_t>, std::equal_to<std::uint64_t>,
                     recycling_allocator<value>>
      map{recycling_allocator<value>(nodes)};
  for (std::uint64_t round = 0; round < 50; ++round) {
    for (std::uint64_t i = 0; i < 20; ++i) {
      map.emplace(round * 100 + i, make_request(round * 100 + i, "payload " + std::to_string(i)));
    }
    CHECK(nodes.kept() == 0);  // the kept nodes were taken again first
    for (std::uint64_t i = 0; i < 20; ++i) {
      auto it = map.find(round * 100 + i);
      REQUIRE(it != map.end());
      CHECK(it->second.payload.to_string() == "payload " + std::to_string(i));
      map.erase(it);
    }
    CHECK(map.empty());
    CHECK(nodes.kept() == 8);  // the cap; the other 12 went back to the heap
  }
  map.emplace(1, make_request(1, "x"));
  CHECK(nodes.kept() == 7);
  // Allocators are equal when they share a recycler, whatever they allocate.
  block_recycler other(1);
  CHECK(recycling_allocator<int>(nodes) == recycling_allocator<value>(nodes));
  CHECK(recycling_allocator<int>(nodes) != recycling_allocator<int>(other));
  CHECK(map.get_allocator() == recycling_allocator<std::string>(nodes));
}
