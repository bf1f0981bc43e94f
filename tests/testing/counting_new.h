// A counting replacement of the global operator new / delete, for a test binary that measures
// what code holds at once: link tests/testing/counting_new.cc into that binary (its own binary,
// so that the counting touches no other test). Counts malloc_usable_size of every block, so
// figures include malloc's rounding.
//
//   const int64_t before = maas::testing::StartPeakCount();
//   ... work ...
//   const int64_t peak = maas::testing::PeakLiveBytes() - before;
#ifndef MAAS_TESTS_TESTING_COUNTING_NEW_H_
#define MAAS_TESTS_TESTING_COUNTING_NEW_H_

#include <cstdint>

namespace maas::testing {

// Bytes live through operator new now.
int64_t LiveBytes();
// Starts a new peak at the bytes live now, and returns them.
int64_t StartPeakCount();
// The most bytes live at once since the last StartPeakCount (or the start of the process).
int64_t PeakLiveBytes();

}  // namespace maas::testing

#endif  // MAAS_TESTS_TESTING_COUNTING_NEW_H_
