#include "services/discriminative/core/term_table.h"

#include <algorithm>
#include <utility>

namespace maas::discriminative {

void TermTable::Rehash(size_t capacity) {
  LargeVector<Slot> old = std::move(slots_);
  slots_ = LargeVector<Slot>(LargeArrayAllocator<Slot>(huge_pages_));
  slots_.assign(capacity, Slot());
  mask_ = capacity - 1;
  home_shift_ = 64 - static_cast<unsigned>(__builtin_ctzll(capacity));
  filter_ = LargeVector<uint64_t>(LargeArrayAllocator<uint64_t>(huge_pages_));
  filter_.assign(capacity / 16, 0);  // 4 bits per slot (capacity >= 16)
  filter_mask_ = 4 * capacity - 1;
  filter_shift_ = home_shift_ - 2;
  for (const Slot& slot : old) {
    if ((slot.lo | slot.hi) == 0) continue;
    const uint64_t hash = HashOf(Key{slot.lo, slot.hi});
    AddToFilter(hash);
    size_t i = HomeOfHash(hash);
    while ((slots_[i].lo | slots_[i].hi) != 0) i = (i + 1) & mask_;
    slots_[i] = slot;
  }
}

void TermTable::Grow(size_t n) {
  size_t capacity = std::max<size_t>(16, 2 * slots_.size());
  while (!Fits(n, capacity)) capacity *= 2;
  Rehash(capacity);
}

void TermTable::Reserve(size_t n, size_t bytes) {
  if (!Fits(n, slots_.size())) Grow(n);
  if (offsets_.capacity() < n + 1) offsets_.reserve(std::max(n + 1, 2 * offsets_.capacity()));
  if (bytes_.capacity() < bytes) bytes_.reserve(bytes);
}

void TermTable::Assign(LargeString bytes, LargeVector<size_t> offsets,
                       const std::vector<uint32_t>& placement) {
  *this = TermTable();
  huge_pages_ = true;
  if (!Fits(placement.size(), slots_.size())) Grow(placement.size());
  bytes_ = std::move(bytes);
  offsets_ = std::move(offsets);
  // The keys in id order (the arena read once, in order), then placed in `placement`'s order, a
  // random walk over the keys and the slots: each key requested kAhead places before its turn,
  // its home slot kAhead / 2 places before, so that the misses overlap (for 0.8 M terms this took
  // the table's build from 42 to ~25 ms).
  const size_t n = placement.size();
  std::vector<Key> keys(n);
  for (uint32_t id = 0; id < n; ++id) keys[id] = KeyOf(term(id));
  constexpr size_t kAhead = 16;
  for (size_t k = 0; k < n; ++k) {
    if (k + kAhead < n) __builtin_prefetch(&keys[placement[k + kAhead]]);
    if (k + kAhead / 2 < n) {
      __builtin_prefetch(&slots_[HomeOfHash(HashOf(keys[placement[k + kAhead / 2]]))], 1);
    }
    const uint32_t id = placement[k];
    const Key key = keys[id];
    const uint64_t hash = HashOf(key);
    size_t i = HomeOfHash(hash);
    while ((slots_[i].lo | slots_[i].hi) != 0) i = (i + 1) & mask_;
    slots_[i] = Slot{key.lo, key.hi, id};
    AddToFilter(hash);
  }
}

std::pair<uint32_t, bool> TermTable::InsertFrom(const Key& key, size_t home,
                                                std::string_view term) {
  if (offsets_.empty()) offsets_.push_back(0);
  size_t i = home;
  for (;; i = (i + 1) & mask_) {
    const Slot& slot = slots_[i];
    if ((slot.lo | slot.hi) == 0) break;
    if (slot.lo == key.lo && slot.hi == key.hi &&
        (key.hi != kLongTag || SameBytes(this->term(slot.id), term))) {
      return {slot.id, false};
    }
  }
  const auto id = static_cast<uint32_t>(size());
  slots_[i] = Slot{key.lo, key.hi, id};
  AddToFilter(HashOf(key));
  bytes_.append(term.data(), term.size());
  offsets_.push_back(bytes_.size());
  return {id, true};
}

}  // namespace maas::discriminative
