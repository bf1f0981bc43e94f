// `make tsan` only (first on its include path): protobuf's map_field.h with __SANITIZE_THREAD__
// hidden.
//
// Protobuf 3.21 gives MapFieldBase two more members (seq1_, seq2_: its own check for const/mutable
// access races) when __SANITIZE_THREAD__ is defined. Debian's libprotobuf is built without TSan, so
// code compiled with -fsanitize=thread would disagree with the library about the layout of every
// map field (a message with a map crashed in SpaceUsedLong). Hiding the macro while the header is
// read keeps the library's layout.
#pragma push_macro("__SANITIZE_THREAD__")
#undef __SANITIZE_THREAD__
#include_next <google/protobuf/map_field.h>
#pragma pop_macro("__SANITIZE_THREAD__")
