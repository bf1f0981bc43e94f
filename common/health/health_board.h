// A server's own grpc.health.v1 serving statuses (transport-free): what Check answers and what
// Watch streams. The gateway serves grpc.health.v1 from it on the proxy's completion queues (see
// proxy.h) instead of gRPC's default health service, a callback-API service whose threads would
// share the poller with the proxy and cost every proxied call more CPU; the server kit serves it
// for the services (common/server/health_service.h), because the default service kept every
// Watch stream open through a shutdown's whole grace period.
//
// The rules are those of gRPC's default health service (1.51), which the server kit drives through
// grpc::HealthCheckServiceInterface (see HealthBoardService in proxy.h):
//   - "" (the whole server) starts SERVING; a name is known once it has been set;
//   - Get of a name never set is kServiceUnknown (Check answers NOT_FOUND, Watch SERVICE_UNKNOWN);
//   - SetAll sets every known name (and every watched one); Shutdown sets them all NOT_SERVING,
//     after which Set records NOT_SERVING whatever it is given and SetAll is ignored;
//   - a watcher gets the current status when added, then one call per Set / SetAll / Shutdown that
//     changes the status of its name (the health protocol's "whenever the service's status
//     changes"; gRPC 1.51's default service also repeated an unchanged status, so the gateway's
//     Watch calls got one message per name at every round of backend health checks);
//   - Shutdown then tells every watcher the server is stopping (OnShutdown), so that Watch calls
//     end instead of holding the server's shutdown until its grace period runs out; a watcher
//     added after Shutdown is told at once.
//
//   HealthBoard board;
//   board.Set("maas.gateway.v1.Gateway", true);
//   board.Get("");                       // kServing
//   board.AddWatch("", &watcher);        // watcher.OnHealth(kServing) at once
//   board.Shutdown();                    // watcher.OnHealth(kNotServing)
//   board.RemoveWatch("", &watcher);
#ifndef MAAS_COMMON_HEALTH_HEALTH_BOARD_H_
#define MAAS_COMMON_HEALTH_HEALTH_BOARD_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "common/health/health_wire.h"

namespace maas::health {

// Thread-safe.
class HealthBoard {
 public:
  class Watcher {
   public:
    // The status of the watched name: kServing, kNotServing or kServiceUnknown; after the first
    // call, only when it differs from the one before. Called with the board's lock held, from the
    // thread that changed the board: must not block or call the board.
    virtual void OnHealth(ServingStatus status) = 0;
    // Once, after Shutdown's OnHealth(kNotServing) for a name that was serving (a name already
    // NOT_SERVING gets no OnHealth then), or right after AddWatch's first OnHealth when the board
    // is already shut down: the server is stopping, the watch should end. Same threading rules
    // as OnHealth.
    virtual void OnShutdown() {}

   protected:
    ~Watcher() = default;
  };

  HealthBoard();
  HealthBoard(const HealthBoard&) = delete;
  HealthBoard& operator=(const HealthBoard&) = delete;

  // Status of `service` ("" = the whole server).
  void Set(absl::string_view service, bool serving);
  // Status of every known or watched name.
  void SetAll(bool serving);
  // Every name NOT_SERVING from now on. Idempotent.
  void Shutdown();

  // kServing, kNotServing, or kServiceUnknown for a name never set.
  ServingStatus Get(absl::string_view service) const;

  // Reports the current status of `service` to `watcher` at once, then every update until
  // RemoveWatch. REQUIRES: `watcher` is not already watching `service`; it stays valid until
  // RemoveWatch returns.
  void AddWatch(absl::string_view service, Watcher* watcher);
  // After it returns, `watcher` is never called again for `service`. No-op when not watching.
  void RemoveWatch(absl::string_view service, Watcher* watcher);

 private:
  struct Entry {
    std::optional<bool> serving;  // nullopt: never set (only watched)
    std::vector<Watcher*> watchers;
  };
  static ServingStatus StatusOf(const Entry& entry);
  static void SetLocked(Entry& entry, bool serving);

  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, Entry> entries_ ABSL_GUARDED_BY(mu_);
  bool shut_down_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace maas::health

#endif  // MAAS_COMMON_HEALTH_HEALTH_BOARD_H_
