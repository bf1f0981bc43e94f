#include "common/health/health_board.h"

#include <algorithm>

namespace maas::health {

HealthBoard::HealthBoard() { entries_[""].serving = true; }

ServingStatus HealthBoard::StatusOf(const Entry& entry) {
  if (!entry.serving.has_value()) return ServingStatus::kServiceUnknown;
  return *entry.serving ? ServingStatus::kServing : ServingStatus::kNotServing;
}

void HealthBoard::SetLocked(Entry& entry, bool serving) {
  const ServingStatus before = StatusOf(entry);
  entry.serving = serving;
  const ServingStatus status = StatusOf(entry);
  if (status == before) return;
  for (Watcher* watcher : entry.watchers) watcher->OnHealth(status);
}

void HealthBoard::Set(absl::string_view service, bool serving) {
  absl::MutexLock lock(&mu_);
  SetLocked(entries_[service], serving && !shut_down_);
}

void HealthBoard::SetAll(bool serving) {
  absl::MutexLock lock(&mu_);
  if (shut_down_) return;
  for (auto& [name, entry] : entries_) SetLocked(entry, serving);
}

void HealthBoard::Shutdown() {
  absl::MutexLock lock(&mu_);
  if (shut_down_) return;
  shut_down_ = true;
  for (auto& [name, entry] : entries_) SetLocked(entry, false);
  for (auto& [name, entry] : entries_) {
    for (Watcher* watcher : entry.watchers) watcher->OnShutdown();
  }
}

ServingStatus HealthBoard::Get(absl::string_view service) const {
  absl::MutexLock lock(&mu_);
  auto it = entries_.find(service);
  return it == entries_.end() ? ServingStatus::kServiceUnknown : StatusOf(it->second);
}

void HealthBoard::AddWatch(absl::string_view service, Watcher* watcher) {
  absl::MutexLock lock(&mu_);
  Entry& entry = entries_[service];
  watcher->OnHealth(StatusOf(entry));
  if (shut_down_) watcher->OnShutdown();
  entry.watchers.push_back(watcher);
}

void HealthBoard::RemoveWatch(absl::string_view service, Watcher* watcher) {
  absl::MutexLock lock(&mu_);
  auto it = entries_.find(service);
  if (it == entries_.end()) return;
  std::vector<Watcher*>& watchers = it->second.watchers;
  watchers.erase(std::remove(watchers.begin(), watchers.end(), watcher), watchers.end());
  // A name only watched is forgotten with its last watcher.
  if (watchers.empty() && !it->second.serving.has_value()) entries_.erase(it);
}

}  // namespace maas::health
