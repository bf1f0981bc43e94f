#include "services/discriminative/core/term_table.h"

#include <algorithm>

namespace maas::discriminative {

void TermTable::Rehash(size_t capacity) {
  std::vector<Slot> old = std::move(slots_);
  slots_.assign(capacity, Slot());
  mask_ = capacity - 1;
  for (const Slot& slot : old) {
    if (slot.key == 0) continue;
    size_t i = Mix(slot.key) & mask_;
    while (slots_[i].key != 0) i = (i + 1) & mask_;
    slots_[i] = slot;
  }
}

void TermTable::Reserve(size_t n) {
  size_t capacity = 16;
  while (!Fits(n, capacity)) capacity *= 2;
  if (capacity > slots_.size()) Rehash(capacity);
  offsets_.reserve(n + 1);
}

std::pair<uint32_t, bool> TermTable::Insert(std::string_view term) {
  if (!Fits(size() + 1, slots_.size())) Rehash(std::max<size_t>(16, 2 * slots_.size()));
  if (offsets_.empty()) offsets_.push_back(0);
  const uint64_t key = Key(term);
  size_t i = Mix(key) & mask_;
  for (;; i = (i + 1) & mask_) {
    const Slot& slot = slots_[i];
    if (slot.key == 0) break;
    if (slot.key == key && (term.size() <= 7 || this->term(slot.id) == term)) {
      return {slot.id, false};
    }
  }
  const auto id = static_cast<uint32_t>(size());
  slots_[i] = Slot{key, id};
  bytes_.append(term.data(), term.size());
  offsets_.push_back(bytes_.size());
  return {id, true};
}

}  // namespace maas::discriminative
