// Test helper: an ostream whose writes and reads are serialized, for a server's call log (the
// server writes its lines from its own threads while the test reads them).
#ifndef MAAS_TESTS_COMMON_SERVER_LOCKED_STREAM_H_
#define MAAS_TESTS_COMMON_SERVER_LOCKED_STREAM_H_

#include <mutex>
#include <ostream>
#include <sstream>
#include <string>

namespace maas::testing {

class LockedStream : public std::ostream {
 public:
  LockedStream() : std::ostream(&buf_) {}
  std::string str() {
    std::lock_guard<std::recursive_mutex> lock(buf_.mu);
    return buf_.str();
  }

 private:
  struct Buf : public std::stringbuf {
    std::recursive_mutex mu;  // xsputn may call overflow
    std::streamsize xsputn(const char* s, std::streamsize n) override {
      std::lock_guard<std::recursive_mutex> lock(mu);
      return std::stringbuf::xsputn(s, n);
    }
    int_type overflow(int_type c) override {
      std::lock_guard<std::recursive_mutex> lock(mu);
      return std::stringbuf::overflow(c);
    }
  } buf_;
};

}  // namespace maas::testing

#endif  // MAAS_TESTS_COMMON_SERVER_LOCKED_STREAM_H_
