// worker_ring: strict round robin over eligible workers.
#include <catch2/catch.hpp>

#include <deque>
#include <string>
#include <vector>

#include "broker/worker_ring.hpp"

using carico::known_worker;
using carico::worker_ring;
using carico::worker_state;

namespace {

// Workers that live as long as the test; deque keeps their addresses stable.
struct pool {
  std::deque<known_worker> workers;  // every worker made so far

  known_worker* make(const std::string& name, std::uint64_t capacity = 1) {
    known_worker& w = workers.emplace_back();
    w.name = name;
    w.identity = name;
    w.info.capacity = capacity;
    return &w;
  }
};

// Picks n times; each picked worker is given nothing (capacity is untouched).
std::string picks(worker_ring& ring, int n) {
  std::string out;
  for (int i = 0; i < n; ++i) {
    known_worker* w = ring.next_eligible();
    out += w ? w->name : "-";
  }
  return out;
}

}  // namespace

TEST_CASE("an empty ring has nobody", "[ring]") {
  worker_ring ring;
  CHECK(ring.empty());
  CHECK(ring.next_eligible() == nullptr);
  CHECK_FALSE(ring.any_eligible());
  ring.remove(nullptr);  // harmless
}

TEST_CASE("strict rotation in join order", "[ring]") {
  pool p;
  worker_ring ring;
  for (const char* n : {"A", "B", "C"}) ring.add(p.make(n));
  CHECK(ring.size() == 3);
  CHECK(picks(ring, 9) == "ABCABCABC");
  CHECK(ring.any_eligible());
}

TEST_CASE("a worker added during rotation is reached after all current ones", "[ring]") {
  pool p;
  worker_ring ring;
  for (const char* n : {"A", "B", "C"}) ring.add(p.make(n));
  SECTION("after A") {
    CHECK(picks(ring, 1) == "A");
    ring.add(p.make("D"));
    // B and C, then A, are owed a turn before the newcomer.
    CHECK(picks(ring, 8) == "BCADBCAD");
  }
  SECTION("after C, at the wrap") {
    CHECK(picks(ring, 3) == "ABC");
    ring.add(p.make("D"));
    CHECK(picks(ring, 8) == "ABCDABCD");
  }
  SECTION("into a ring of one") {
    worker_ring single;
    single.add(p.make("X"));
    CHECK(picks(single, 2) == "XX");
    single.add(p.make("Y"));
    CHECK(picks(single, 4) == "XYXY");
  }
}

TEST_CASE("removing workers keeps the rotation", "[ring]") {
  pool p;
  worker_ring ring;
  known_worker* a = p.make("A");
  known_worker* b = p.make("B");
  known_worker* c = p.make("C");
  known_worker* d = p.make("D");
  for (known_worker* w : {a, b, c, d}) ring.add(w);
  CHECK(picks(ring, 1) == "A");  // next is B

  SECTION("remove the next one: its follower takes its turn") {
    ring.remove(b);
    CHECK(picks(ring, 6) == "CDACDA");
  }
  SECTION("remove one already served") {
    ring.remove(a);
    CHECK(picks(ring, 6) == "BCDBCD");
  }
  SECTION("remove one still to come") {
    ring.remove(c);
    CHECK(picks(ring, 6) == "BDABDA");
  }
  SECTION("remove the last one when it is next") {
    CHECK(picks(ring, 2) == "BC");  // next is D
    ring.remove(d);
    CHECK(picks(ring, 3) == "ABC");
  }
  SECTION("remove everything") {
    for (known_worker* w : {a, b, c, d}) ring.remove(w);
    CHECK(ring.empty());
    CHECK(ring.next_eligible() == nullptr);
    ring.add(b);
    CHECK(picks(ring, 2) == "BB");
  }
  SECTION("remove an unknown worker changes nothing") {
    ring.remove(p.make("Z"));
    CHECK(ring.size() == 4);
    CHECK(picks(ring, 4) == "BCDA");
  }
}

TEST_CASE("ineligible workers are skipped", "[ring]") {
  pool p;
  worker_ring ring;
  known_worker* a = p.make("A");
  known_worker* b = p.make("B");
  known_worker* c = p.make("C");
  for (known_worker* w : {a, b, c}) ring.add(w);

  SECTION("overloaded, then ready again") {
    b->load.state = worker_state::overload;
    CHECK(picks(ring, 4) == "ACAC");
    b->load.state = worker_state::ready;
    CHECK(picks(ring, 3) == "ABC");
  }
  SECTION("draining") {
    a->load.state = worker_state::drain;
    CHECK(picks(ring, 4) == "BCBC");
  }
  SECTION("full") {
    c->in_flight.push_back(1);
    CHECK(picks(ring, 4) == "ABAB");
    c->in_flight.clear();
    CHECK(picks(ring, 3) == "CAB");
  }
  SECTION("nobody eligible") {
    for (known_worker* w : {a, b, c}) w->load.state = worker_state::overload;
    CHECK_FALSE(ring.any_eligible());
    CHECK(ring.next_eligible() == nullptr);
    // Skipping does not move the rotation: the next eligible is still A.
    b->load.state = worker_state::ready;
    a->load.state = worker_state::ready;
    CHECK(picks(ring, 2) == "AB");
  }
  SECTION("a skipped worker keeps its place") {
    CHECK(picks(ring, 1) == "A");
    b->load.state = worker_state::overload;
    CHECK(picks(ring, 1) == "C");
    b->load.state = worker_state::ready;
    CHECK(picks(ring, 3) == "ABC");
  }
}

TEST_CASE("capacity above one", "[ring]") {
  pool p;
  worker_ring ring;
  known_worker* a = p.make("A", 2);
  known_worker* b = p.make("B", 1);
  ring.add(a);
  ring.add(b);
  // Dispatch like the broker does: each pick takes one slot.
  auto take = [&](int n) {
    std::string out;
    for (int i = 0; i < n; ++i) {
      known_worker* w = ring.next_eligible();
      if (w == nullptr) {
        out += "-";
        continue;
      }
      w->in_flight.push_back(static_cast<std::uint64_t>(i));
      out += w->name;
    }
    return out;
  };
  CHECK(take(4) == "ABA-");  // rotation still alternates; A takes two, B one
  CHECK_FALSE(ring.any_eligible());
  a->in_flight.pop_back();
  CHECK(ring.any_eligible());
  CHECK(take(2) == "A-");
  CHECK(a->eligible() == false);
  CHECK(a->in_flight.size() == 2);
}
