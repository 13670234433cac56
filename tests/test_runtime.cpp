// loop_waker and wait_for_input: the waiting the broker and worker loops do.
#include <catch2/catch.hpp>

#include <chrono>
#include <stdexcept>
#include <thread>

#include "shared/runtime.hpp"
#include "tests/support/fake_peers.hpp"

using namespace carico;
using namespace std::chrono_literals;

namespace {

// Milliseconds wait_for_input took.
long timed_wait(zmq::pollitem_t* items, std::size_t count, long timeout_ms) {
  const auto start = clock::now();
  wait_for_input(items, count, timeout_ms);
  return static_cast<long>(
      std::chrono::duration_cast<milliseconds>(clock::now() - start).count());
}

}  // namespace

TEST_CASE("a loop_waker is readable from wake() until drain()") {
  loop_waker waker;
  zmq::pollitem_t item = waker.pollitem();
  wait_for_input(&item, 1, 0);
  CHECK(item.revents == 0);

  waker.wake();
  waker.wake();  // wake-ups add up to one readable state
  wait_for_input(&item, 1, 0);
  CHECK(item.revents == ZMQ_POLLIN);

  waker.drain();
  wait_for_input(&item, 1, 0);
  CHECK(item.revents == 0);
}

TEST_CASE("wake() from another thread ends a wait at once") {
  loop_waker waker;
  zmq::pollitem_t item = waker.pollitem();
  std::thread other([&waker] {
    std::this_thread::sleep_for(50ms);
    waker.wake();
  });
  const long took = timed_wait(&item, 1, 10000);
  other.join();
  CHECK(item.revents == ZMQ_POLLIN);
  CHECK(took < 5000);
}

TEST_CASE("wait_for_input wakes for a message once the socket found nothing") {
  zmq::context_t context;
  test::inproc_pair pair(context);
  zmq::socket_t& receiver = pair.receiver;
  zmq::socket_t& sender = pair.sender;
  loop_waker waker;

  // The contract: the socket's last operation was a receive that found nothing.
  zmq::message_t m;
  REQUIRE_FALSE(receiver.recv(m, zmq::recv_flags::dontwait));

  zmq::pollitem_t items[] = {{receiver.handle(), 0, ZMQ_POLLIN, 0}, waker.pollitem()};
  SECTION("nothing arrives: the wait lasts its timeout") {
    const long took = timed_wait(items, 2, 100);
    CHECK(took >= 90);
    CHECK(items[0].revents == 0);
    CHECK(items[1].revents == 0);
  }
  SECTION("a message arrives during the wait") {
    std::thread other([&sender] {
      std::this_thread::sleep_for(50ms);
      sender.send(zmq::str_buffer("hello"), zmq::send_flags::none);
    });
    const long took = timed_wait(items, 2, 10000);
    other.join();
    CHECK(took < 5000);
    CHECK(items[0].revents == ZMQ_POLLIN);
    CHECK(items[1].revents == 0);
    REQUIRE(receiver.recv(m, zmq::recv_flags::dontwait));
    CHECK(m.to_string() == "hello");
  }
  SECTION("a message that arrived before the wait ends it at once") {
    sender.send(zmq::str_buffer("early"), zmq::send_flags::none);
    const long took = timed_wait(items, 2, 10000);
    CHECK(took < 5000);
    CHECK(items[0].revents == ZMQ_POLLIN);
    REQUIRE(receiver.recv(m, zmq::recv_flags::dontwait));
    CHECK(m.to_string() == "early");
  }
}

TEST_CASE("wait_for_input refuses more items than it can watch") {
  loop_waker waker;
  zmq::pollitem_t items[9];
  for (auto& item : items) item = waker.pollitem();
  CHECK_THROWS_AS(wait_for_input(items, 9, 0), std::invalid_argument);
}

TEST_CASE("poll_timeout rounds up, so a wait for a deadline never spins") {
  const time_point now = clock::now();
  CHECK(poll_timeout(now - 5ms) == 0);
  CHECK(poll_timeout(now - 1us) == 0);
  // Under a millisecond to go is still a wait of one, not a return at once.
  // The best of three tries: a thread preempted between its clock::now() and
  // poll_timeout's own reading sees less time left.
  auto best_of_three = [](std::chrono::microseconds ahead) {
    long best = 0;
    for (int i = 0; i < 3; ++i) best = std::max(best, poll_timeout(clock::now() + ahead));
    return best;
  };
  CHECK(best_of_three(300us) == 1);
  CHECK(best_of_three(1500us) == 2);
  CHECK(poll_timeout(clock::now() + 10s) == 1000);
  CHECK(poll_timeout(clock::now() + 10s, 60000) >= 9999);
}
