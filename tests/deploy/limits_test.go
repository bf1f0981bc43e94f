package deploy

import (
	"fmt"
	"strconv"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// TestConnectionAgeBounded: every server that can close old client connections does so in every overlay
// (backends --max_connection_age_seconds, gateway --max_connection_age_ms), so that clients re-resolve and
// spread over the replicas an HPA adds; a connection kept forever stays on the pod it first reached.
func TestConnectionAgeBounded(t *testing.T) {
	for _, dir := range overlays {
		for _, s := range servers(t, render(t, dir)) {
			known := flagNames(t, s.Binary)
			for _, flag := range []string{"max_connection_age_seconds", "max_connection_age_ms"} {
				if !known[flag] {
					continue
				}
				if v, err := strconv.ParseInt(s.Value[flag], 10, 64); err != nil || v <= 0 {
					t.Errorf("%s: %s: --%s=%q: set it > 0 so clients re-resolve and reach new replicas", dir,
						s.Deployment.Name, flag, s.Value[flag])
				}
			}
		}
	}
}

const mib = int64(1) << 20

// processReserve is what a server needs besides its budgets: the process itself (~20 MB idle), the 32 MiB
// malloc keeps (--malloc_retain_mb), gRPC's and the call log's buffers (the log drops lines beyond 8 MiB).
const processReserve = 128 * mib

// flagBytes is a server's integer flag, or the binary's default when the manifests do not set it.
func flagBytes(t *testing.T, s *Server, name string, def int64) int64 {
	t.Helper()
	v, ok := s.Value[name]
	if !ok {
		return def
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		t.Fatalf("%s: --%s=%q is not an integer", s.Deployment.Name, name, v)
	}
	return n
}

// memoryBound is the most memory a server's flags let it hold, as the flag files' comments add it up
// (without processReserve), and the terms of the sum.
func memoryBound(t *testing.T, s *Server) (int64, string) {
	t.Helper()
	msg := flagBytes(t, s, "max_message_bytes", 64*mib)
	// A service's admitted call holds its request twice (the received bytes and the parsed message: one
	// 51 MB Classify took the server from 21 MiB to 126 MiB RSS) and its response; refused beyond
	// --max_concurrent_calls.
	calls := flagBytes(t, s, "max_concurrent_calls", 256)
	unbounded := func(name string, v int64) {
		if v <= 0 {
			t.Errorf("%s: --%s=%d sets no bound: memory cannot be added up", s.Deployment.Name, name, v)
		}
	}
	switch s.Binary {
	case "maas-gateway":
		streams := flagBytes(t, s, "max_concurrent_streams", 4096)
		if s.Value["backend_tls_ca_file"] != "" || s.Value["h2_front"] == "false" {
			// The gRPC-library proxy: one whole message per direction per call, the request kept until the
			// call ends.
			return streams * 2 * msg, fmt.Sprintf("gRPC proxy: %d streams x 2 x %d MiB", streams, msg/mib)
		}
		// The HTTP/2 front: per stream its two flow-control windows and the request kept (up to 256 KiB)
		// for a retry until the response headers arrive.
		window := flagBytes(t, s, "stream_window_bytes", 256<<10)
		return streams * (2*window + 256<<10), fmt.Sprintf("HTTP/2 front: %d streams x (2 x %d KiB + 256 KiB)",
			streams, window>>10)
	case "maas-generative":
		cache := flagBytes(t, s, "model_cache_bytes", 2048*mib)
		fits := flagBytes(t, s, "max_total_fit_bytes", 2048*mib)
		threads := flagBytes(t, s, "threads", 0)
		tails := flagBytes(t, s, "max_stream_estimate_tail_bytes", 1024*mib)
		models := flagBytes(t, s, "max_model_bytes", 1024*mib)
		unbounded("max_concurrent_calls", calls)
		unbounded("model_cache_bytes", cache)
		unbounded("max_total_fit_bytes", fits)
		unbounded("threads", threads)
		unbounded("max_stream_estimate_tail_bytes", tails)
		unbounded("max_model_bytes", models)
		// A fit of B bytes peaks at 2.7 B + 0.08 GB (README, Limits), plus ~9x its model's parameters (8.7x
		// measured: the parameters' copies while the model is stored and loaded back); at most --threads fits
		// run at once.
		fitPeak := fits*27/10 + threads*80_000_000
		modelPeak := threads * 9 * models
		return cache + fitPeak + modelPeak + tails + calls*2*msg, fmt.Sprintf(
			"cache %d MiB + fits %d MiB + fitted models %d MiB + k-hat tails %d MiB + %d calls x 2 x %d MiB",
			cache/mib, fitPeak/mib, modelPeak/mib, tails/mib, calls, msg/mib)
	case "maas-discriminative":
		cache := flagBytes(t, s, "model_cache_bytes", 2048*mib)
		trainMemory := flagBytes(t, s, "max_train_memory_bytes", 4096*mib)
		trainBytes := flagBytes(t, s, "max_total_train_bytes", 2048*mib)
		trainThreads := flagBytes(t, s, "train_threads", 1)
		unbounded("max_concurrent_calls", calls)
		unbounded("model_cache_bytes", cache)
		unbounded("max_total_train_bytes", trainBytes)
		// One Train vectorizes per --train_threads thread at a time.
		return cache + trainThreads*trainMemory + trainBytes + calls*2*msg, fmt.Sprintf(
			"cache %d MiB + %d x train memory %d MiB + train bytes %d MiB + %d calls x 2 x %d MiB", cache/mib,
			trainThreads, trainMemory/mib, trainBytes/mib, calls, msg/mib)
	}
	t.Fatalf("%s: no memory model for %s", s.Deployment.Name, s.Binary)
	return 0, ""
}

// TestMemoryFitsLimit: in every overlay, each server's memory budgets (model cache, fit / train budgets, the
// messages of the calls it admits at once; the gateway's streams) plus processReserve fit its container's
// memory limit, so that a load the flags allow is refused (RESOURCE_EXHAUSTED) before the kernel OOM-kills
// the pod.
func TestMemoryFitsLimit(t *testing.T) {
	for _, dir := range overlays {
		for _, s := range servers(t, render(t, dir)) {
			limit, ok := s.Container.Resources.Limits[corev1.ResourceMemory]
			if !ok {
				t.Errorf("%s: %s: no memory limit", dir, s.Deployment.Name)
				continue
			}
			bound, terms := memoryBound(t, s)
			if need := bound + processReserve; need > limit.Value() {
				t.Errorf("%s: %s: %s + %d MiB for the process = %d MiB > memory limit %s", dir, s.Deployment.Name,
					terms, processReserve/mib, need/mib, limit.String())
			}
		}
	}
}

// trainPeakBytesPerCell is what fitting and storing a discriminative model holds at its peak per class x feature
// (services/discriminative/core/pipeline.h, kTrainPeakBytesPerCell): the server refuses a Train whose peak would
// pass --max_train_memory_bytes before the fit.
const trainPeakBytesPerCell = 56

// TestTrainPeakInsideTrainMemory: in every overlay, a Train at the discriminative server's --max_model_cells fits its
// --max_train_memory_bytes (the memory sum's train term), so the cell limit says what can be trained: a 53-byte
// Train at the default cell limit (2^25) peaked at 3.6 GB, past the pod's 2 GiB.
func TestTrainPeakInsideTrainMemory(t *testing.T) {
	for _, dir := range overlays {
		for _, s := range servers(t, render(t, dir)) {
			if s.Binary != "maas-discriminative" {
				continue
			}
			cells := flagBytes(t, s, "max_model_cells", 1<<25)
			trainMemory := flagBytes(t, s, "max_train_memory_bytes", 4096*mib)
			if peak := cells * trainPeakBytesPerCell; peak > trainMemory {
				t.Errorf("%s: %s: --max_model_cells=%d x %d bytes = %d MiB at a Train's peak > --max_train_memory_bytes "+
					"%d MiB: lower the cell limit", dir, s.Deployment.Name, cells, trainPeakBytesPerCell, peak/mib,
					trainMemory/mib)
			}
		}
	}
}
