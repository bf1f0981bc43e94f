#include "services/gateway/h2/grpc_framing.h"

#include <algorithm>

namespace maas::gateway::h2 {

bool MessageScanner::Feed(const uint8_t* data, size_t len) {
  if (too_large_ != 0 || too_many_) return false;
  const size_t total = len;
  while (len > 0) {
    if (payload_left_ > 0) {
      const size_t skip = static_cast<size_t>(std::min<uint64_t>(payload_left_, len));
      payload_left_ -= skip;
      data += skip;
      len -= skip;
      continue;
    }
    if (have_ == 0 && messages_ >= max_messages_) {
      too_many_ = true;
      taken_before_stop_ = total - len;
      return false;
    }
    // Where this message's prefix began in this call (0 when it began in an earlier one).
    const size_t start = total - len >= static_cast<size_t>(have_) ? total - len - have_ : 0;
    const size_t take = std::min<size_t>(5 - have_, len);
    std::copy(data, data + take, prefix_ + have_);
    have_ += static_cast<int>(take);
    data += take;
    len -= take;
    if (have_ < 5) break;
    have_ = 0;
    const uint32_t size = (uint32_t{prefix_[1]} << 24) | (uint32_t{prefix_[2]} << 16) |
                          (uint32_t{prefix_[3]} << 8) | uint32_t{prefix_[4]};
    ++messages_;
    if (size > max_) {
      too_large_ = size;
      taken_before_stop_ = start;
      return false;
    }
    payload_left_ = size;
  }
  return true;
}

}  // namespace maas::gateway::h2
