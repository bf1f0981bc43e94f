// construct() for allocators whose containers skip the zero fill: resize(n) then leaves new values
// default-initialised (indeterminate for numbers), for storage that is written before it is read.
#ifndef MAAS_SERVICES_DISCRIMINATIVE_CORE_DEFAULT_INIT_H_
#define MAAS_SERVICES_DISCRIMINATIVE_CORE_DEFAULT_INIT_H_

#include <new>
#include <utility>

namespace maas::discriminative {

// A base of such an allocator, which brings these in with `using DefaultInitConstruct::construct;`
// (hiding any construct of its other bases).
struct DefaultInitConstruct {
  template <typename U>
  void construct(U* p) noexcept {
    ::new (static_cast<void*>(p)) U;
  }
  template <typename U, typename... Args>
  void construct(U* p, Args&&... args) {
    ::new (static_cast<void*>(p)) U(std::forward<Args>(args)...);
  }
};

}  // namespace maas::discriminative

#endif  // MAAS_SERVICES_DISCRIMINATIVE_CORE_DEFAULT_INIT_H_
