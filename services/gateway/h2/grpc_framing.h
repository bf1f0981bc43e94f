// Message boundaries of one direction of a gRPC stream (transport-free): every message is a 1-byte
// flag, a 4-byte big-endian length and that many payload bytes. The scanner reads the 5-byte
// prefixes and skips the payloads (never decodes them), so the h2 front can enforce
// --max_message_bytes without parsing messages.
//
//   MessageScanner scan(64 << 20);
//   if (!scan.Feed(data, len)) ... RESOURCE_EXHAUSTED: scan.too_large() bytes declared ...
#ifndef MAAS_SERVICES_GATEWAY_H2_GRPC_FRAMING_H_
#define MAAS_SERVICES_GATEWAY_H2_GRPC_FRAMING_H_

#include <cstddef>
#include <cstdint>

namespace maas::gateway::h2 {

class MessageScanner {
 public:
  // Messages may declare at most `max_message_bytes` payload bytes.
  explicit MessageScanner(uint32_t max_message_bytes) : max_(max_message_bytes) {}

  // Takes the next bytes of the stream, split anywhere. False once a message declares more than
  // the maximum (and from then on: the scanner stops).
  bool Feed(const uint8_t* data, size_t len);

  // Messages whose prefix has been read completely.
  int64_t messages() const { return messages_; }
  // True when every message read so far is complete (no prefix or payload pending).
  bool at_boundary() const { return have_ == 0 && payload_left_ == 0; }
  // The length the first oversized message declared; 0 while none did.
  uint32_t too_large() const { return too_large_; }

  // At most `n` messages (e.g. 1 for the response of a unary method): Feed returns false at the
  // first byte of message n + 1, and from then on (the scanner stops).
  void set_max_messages(int64_t n) { max_messages_ = n; }
  // True once a message beyond set_max_messages() started.
  bool too_many() const { return too_many_; }
  // When Feed returned false: how many bytes of that call came before the message that stopped
  // the scanner (the extra message, or the oversized one's prefix; 0 when that prefix began in an
  // earlier call), i.e. the complete messages that may still be forwarded.
  size_t taken_before_stop() const { return taken_before_stop_; }

 private:
  const uint32_t max_;
  uint8_t prefix_[5] = {};
  int have_ = 0;  // prefix bytes collected
  uint64_t payload_left_ = 0;
  int64_t messages_ = 0;
  uint32_t too_large_ = 0;
  int64_t max_messages_ = INT64_MAX;
  bool too_many_ = false;
  size_t taken_before_stop_ = 0;
};

}  // namespace maas::gateway::h2

#endif  // MAAS_SERVICES_GATEWAY_H2_GRPC_FRAMING_H_
