package maas_test

import (
	"cmp"
	"context"
	"fmt"
	"iter"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	commonv1 "github.com/maas-project/maas/clients/go/gen/maas/common/v1"
	discriminativev1 "github.com/maas-project/maas/clients/go/gen/maas/discriminative/v1"
	gatewayv1 "github.com/maas-project/maas/clients/go/gen/maas/gateway/v1"
	generativev1 "github.com/maas-project/maas/clients/go/gen/maas/generative/v1"
	"github.com/maas-project/maas/clients/go/maas"
)

// entry is one entry of a listing: a model (readable) or an unreadable version.
type entry struct {
	name     string
	version  int64
	typ      commonv1.ModelType
	readable bool
}

func (e entry) String() string {
	s := fmt.Sprintf("%s@%d/%s", e.name, e.version, e.typ)
	if !e.readable {
		s += "(unreadable)"
	}
	return s
}

// compareEntries is the listing's order: name, then version, then type.
func compareEntries(a, b entry) int {
	return cmp.Or(strings.Compare(a.name, b.name), cmp.Compare(a.version, b.version), cmp.Compare(a.typ, b.typ))
}

func modelEntries(resp *commonv1.ListModelsResponse) []entry {
	var out []entry
	for _, m := range resp.GetModels() {
		out = append(out, entry{m.GetName(), m.GetVersion(), m.GetType(), true})
	}
	return out
}

func unreadableEntries(resp *commonv1.ListModelsResponse) []entry {
	var out []entry
	for _, u := range resp.GetUnreadableVersions() {
		out = append(out, entry{u.GetName(), u.GetVersion(), u.GetType(), false})
	}
	return out
}

// pageEntries returns the entries of a response (models and unreadable_versions together) in the listing's order,
// after checking that each of the two lists is in that order.
func pageEntries(t *testing.T, resp *commonv1.ListModelsResponse) []entry {
	t.Helper()
	models, unreadable := modelEntries(resp), unreadableEntries(resp)
	for _, list := range [][]entry{models, unreadable} {
		for i := 1; i < len(list); i++ {
			if compareEntries(list[i-1], list[i]) >= 0 {
				t.Fatalf("entries out of order (or repeated): %v then %v", list[i-1], list[i])
			}
		}
	}
	all := append(models, unreadable...)
	slices.SortFunc(all, compareEntries)
	return all
}

func filterEntries(entries []entry, keep func(entry) bool) []entry {
	var out []entry
	for _, e := range entries {
		if keep(e) {
			out = append(out, e)
		}
	}
	return out
}

func ofType(typ commonv1.ModelType) func(entry) bool {
	return func(e entry) bool { return e.typ == typ }
}

func after(last entry) func(entry) bool {
	return func(e entry) bool { return compareEntries(e, last) > 0 }
}

func wantEntries(t *testing.T, what string, got, want []entry) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Fatalf("%s:\n got %v\nwant %v", what, got, want)
	}
}

const pagePrefix = "go-page-"

// createPagingStore stores, under pagePrefix, 13 generative models (one with 2 versions), 5 discriminative ones
// (one named as a generative model: the two differ by type only) and one unreadable version per service (a
// stored file that is empty or foreign, written into the store directly), and returns the entries that a listing
// of the latest versions and one of every version cover, in the listing's order.
func createPagingStore(t *testing.T, c *maas.Client, root string) (latest, every []entry) {
	t.Helper()
	createGenerative := func(name string, version int64) {
		if _, err := c.Generative.CreateModel(testContext(t), &generativev1.CreateModelRequest{
			Name: name, Spec: uniformSpec([]float64{0}, []float64{1})}); err != nil {
			t.Fatal(err)
		}
		if version > 1 {
			every = append(every, entry{name, version - 1, commonv1.ModelType_GENERATIVE, true})
		}
		latest = append(latest, entry{name, version, commonv1.ModelType_GENERATIVE, true})
	}
	train := func(name string) {
		if _, err := c.Discriminative.Train(testContext(t), &discriminativev1.TrainConfig{Name: name},
			maas.Batches(corpus, 100)); err != nil {
			t.Fatal(err)
		}
		latest = append(latest, entry{name, 1, commonv1.ModelType_DISCRIMINATIVE, true})
	}
	for i := range 12 {
		name := fmt.Sprintf("%sg%02d", pagePrefix, i)
		createGenerative(name, 1)
		if i == 3 {
			latest = latest[:len(latest)-1]
			createGenerative(name, 2)
		}
	}
	createGenerative(pagePrefix+"both", 1)
	for i := range 4 {
		train(fmt.Sprintf("%sd%02d", pagePrefix, i))
	}
	train(pagePrefix + "both")
	for _, bad := range []struct {
		service string
		typ     commonv1.ModelType
		content string
	}{{"generative", commonv1.ModelType_GENERATIVE, ""}, {"discriminative", commonv1.ModelType_DISCRIMINATIVE, "not a model"}} {
		name := pagePrefix + "bad-" + bad.service
		dir := filepath.Join(root, bad.service, name, "1")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "model.pb"), []byte(bad.content), 0o644); err != nil {
			t.Fatal(err)
		}
		latest = append(latest, entry{name, 1, bad.typ, false})
	}
	every = append(every, latest...)
	slices.SortFunc(latest, compareEntries)
	slices.SortFunc(every, compareEntries)
	return latest, every
}

// endpoint is one of the three ListModels of a stack, with its paging helpers.
type endpoint struct {
	name  string
	list  func(context.Context, *commonv1.ListModelsRequest) (*commonv1.ListModelsResponse, error)
	all   func(context.Context, *commonv1.ListModelsRequest) (*commonv1.ListModelsResponse, error)
	pages func(context.Context, *commonv1.ListModelsRequest) iter.Seq2[*commonv1.ListModelsResponse, error]
	keep  func(entry) bool // the entries it lists
}

func endpoints(t *testing.T, st *stack) []endpoint {
	gw := dial(t, st.gateway.address())
	g := dial(t, st.generative.address()).Generative
	d := dial(t, st.discriminative.address()).Discriminative
	everything := func(entry) bool { return true }
	return []endpoint{
		{"gateway", gw.Gateway.ListModels, gw.Gateway.ListAllModels, gw.Gateway.ListModelsPages, everything},
		{"generative", g.ListModels, g.ListAllModels, g.ListModelsPages, ofType(commonv1.ModelType_GENERATIVE)},
		{"discriminative", d.ListModels, d.ListAllModels, d.ListModelsPages, ofType(commonv1.ModelType_DISCRIMINATIVE)},
	}
}

// ListModelsPages and ListAllModels against the real servers: listings of more entries than a page, through the
// gateway (both types mixed) and from each service, every entry exactly once and in order; page tokens that
// resume a listing, also across the gateway and the services; tokens sent with another listing refused.
func TestListModelsPaging(t *testing.T) {
	c := dialGateway(t)
	latest, every := createPagingStore(t, c, liveStack.root)
	eps := endpoints(t, liveStack)

	t.Run("every page in order, every entry once", func(t *testing.T) {
		for _, ep := range eps {
			for _, allVersions := range []bool{false, true} {
				want := filterEntries(latest, ep.keep)
				if allVersions {
					want = filterEntries(every, ep.keep)
				}
				for _, size := range []int32{1, 3, 7} {
					var got []entry
					var tokens []string
					for page, err := range ep.pages(testContext(t), &commonv1.ListModelsRequest{
						NamePrefix: pagePrefix, AllVersions: allVersions, PageSize: size}) {
						if err != nil {
							t.Fatalf("%s, page size %d: %v", ep.name, size, err)
						}
						entries := pageEntries(t, page)
						if len(entries) > int(size) {
							t.Fatalf("%s: a page of %d entries for page size %d: %v", ep.name, len(entries), size, entries)
						}
						got = append(got, entries...)
						tokens = append(tokens, page.GetNextPageToken())
					}
					what := fmt.Sprintf("%s, all_versions %v, pages of %d", ep.name, allVersions, size)
					wantEntries(t, what, got, want)
					if len(want) > int(size) && len(tokens) < 2 {
						t.Fatalf("%s: %d entries came in %d page(s)", what, len(got), len(tokens))
					}
					for i, token := range tokens {
						if (token == "") != (i == len(tokens)-1) || slices.Contains(tokens[:i], token) {
							t.Fatalf("%s: next_page_tokens %q (only the last empty, none repeated)", what, tokens)
						}
					}
				}
			}
		}
	})

	t.Run("ListAllModels is the whole listing", func(t *testing.T) {
		for _, ep := range eps {
			for _, allVersions := range []bool{false, true} {
				want := filterEntries(latest, ep.keep)
				if allVersions {
					want = filterEntries(every, ep.keep)
				}
				req := &commonv1.ListModelsRequest{NamePrefix: pagePrefix, AllVersions: allVersions}
				all, err := ep.all(testContext(t), req)
				if err != nil {
					t.Fatalf("%s: %v", ep.name, err)
				}
				if !proto.Equal(req, &commonv1.ListModelsRequest{NamePrefix: pagePrefix, AllVersions: allVersions}) {
					t.Fatalf("ListAllModels changed its request: %v", req)
				}
				what := fmt.Sprintf("%s ListAllModels, all_versions %v", ep.name, allVersions)
				wantEntries(t, what+": models", modelEntries(all), filterEntries(want, func(e entry) bool { return e.readable }))
				wantEntries(t, what+": unreadable_versions", unreadableEntries(all),
					filterEntries(want, func(e entry) bool { return !e.readable }))
				if len(all.GetMissingBackends()) != 0 || all.GetNextPageToken() != "" {
					t.Fatalf("%s: missing_backends %q, next_page_token %q", what, all.GetMissingBackends(), all.GetNextPageToken())
				}
				// The same as one answer (page_size 0), and as pages of 2.
				single, err := ep.list(testContext(t), req)
				if err != nil {
					t.Fatal(err)
				}
				if single.GetNextPageToken() != "" {
					t.Fatalf("%s: page_size 0 answered next_page_token %q", what, single.GetNextPageToken())
				}
				small, err := ep.all(testContext(t), &commonv1.ListModelsRequest{NamePrefix: pagePrefix, AllVersions: allVersions, PageSize: 2})
				if err != nil {
					t.Fatal(err)
				}
				for _, other := range []*commonv1.ListModelsResponse{single, small} {
					if !proto.Equal(other, all) {
						t.Fatalf("%s:\n%v\ndiffers from\n%v", what, all, other)
					}
				}
			}
		}
		// Through the gateway, the listing mixes both types: a generative and a discriminative model of one name
		// are two entries, ordered by type.
		all, err := c.Gateway.ListAllModels(testContext(t), &commonv1.ListModelsRequest{NamePrefix: pagePrefix + "b"})
		if err != nil {
			t.Fatal(err)
		}
		wantEntries(t, "gateway, "+pagePrefix+"b", modelEntries(all), []entry{
			{pagePrefix + "both", 1, commonv1.ModelType_GENERATIVE, true},
			{pagePrefix + "both", 1, commonv1.ModelType_DISCRIMINATIVE, true}})
		// nil: every model of the store (those of the other tests too), none twice.
		everything, err := c.Gateway.ListAllModels(testContext(t), nil)
		if err != nil {
			t.Fatal(err)
		}
		entries := pageEntries(t, everything)
		if len(filterEntries(entries, func(e entry) bool { return strings.HasPrefix(e.name, pagePrefix) })) != len(latest) {
			t.Fatalf("ListAllModels(nil) = %v", entries)
		}
	})

	t.Run("tokens resume a listing and are refused with another one", func(t *testing.T) {
		for _, ep := range eps {
			want := filterEntries(latest, ep.keep)
			first, err := ep.list(testContext(t), &commonv1.ListModelsRequest{NamePrefix: pagePrefix, PageSize: 2})
			if err != nil {
				t.Fatal(err)
			}
			firstEntries := pageEntries(t, first)
			token := first.GetNextPageToken()
			if token == "" || len(firstEntries) == 0 || len(firstEntries) > 2 {
				t.Fatalf("%s: first page of 2: %v", ep.name, first)
			}
			// The rest, from the token (ListAllModels starts at the request's token).
			rest, err := ep.all(testContext(t), &commonv1.ListModelsRequest{NamePrefix: pagePrefix, PageSize: 3, PageToken: token})
			if err != nil {
				t.Fatalf("%s: %v", ep.name, err)
			}
			wantEntries(t, ep.name+": first page + the rest", append(firstEntries, pageEntries(t, rest)...), want)
			// Sent with another name_prefix or all_versions, or without a page_size: INVALID_ARGUMENT.
			for _, bad := range []*commonv1.ListModelsRequest{
				{NamePrefix: pagePrefix + "g", PageSize: 2, PageToken: token},
				{NamePrefix: "", PageSize: 2, PageToken: token},
				{NamePrefix: pagePrefix, AllVersions: true, PageSize: 2, PageToken: token},
				{NamePrefix: pagePrefix, PageToken: token},
				{NamePrefix: pagePrefix, PageSize: -1},
			} {
				_, err := ep.list(testContext(t), bad)
				if maas.Code(err) != codes.InvalidArgument {
					t.Fatalf("%s: ListModels(%v) = %v, want INVALID_ARGUMENT", ep.name, bad, err)
				}
			}
			// ListAllModels passes the refusal on, naming the RPC.
			_, err = ep.all(testContext(t), &commonv1.ListModelsRequest{NamePrefix: pagePrefix + "d", PageToken: token})
			if e := wantCode(t, err, codes.InvalidArgument); !strings.HasSuffix(e.RPC, ".ListModels") {
				t.Fatalf("%s: the error names RPC %q", ep.name, e.RPC)
			}
		}
	})

	t.Run("tokens work across the gateway and the services", func(t *testing.T) {
		gateway, services := eps[0], eps[1:]
		for _, size := range []int32{2, 5} {
			// A gateway page (of both types), continued on each service: that service's entries after it.
			page, err := gateway.list(testContext(t), &commonv1.ListModelsRequest{NamePrefix: pagePrefix, PageSize: size})
			if err != nil {
				t.Fatal(err)
			}
			last := pageEntries(t, page)[len(pageEntries(t, page))-1]
			for _, ep := range services {
				rest, err := ep.all(testContext(t), &commonv1.ListModelsRequest{NamePrefix: pagePrefix, PageToken: page.GetNextPageToken()})
				if err != nil {
					t.Fatalf("gateway token on %s: %v", ep.name, err)
				}
				wantEntries(t, "gateway token on "+ep.name, pageEntries(t, rest), filterEntries(filterEntries(latest, ep.keep), after(last)))
			}
			// A service's page, continued on the gateway: the entries of both types after it.
			for _, ep := range services {
				page, err := ep.list(testContext(t), &commonv1.ListModelsRequest{NamePrefix: pagePrefix, PageSize: size})
				if err != nil {
					t.Fatal(err)
				}
				entries := pageEntries(t, page)
				rest, err := gateway.all(testContext(t), &commonv1.ListModelsRequest{NamePrefix: pagePrefix, PageToken: page.GetNextPageToken()})
				if err != nil {
					t.Fatalf("%s token on the gateway: %v", ep.name, err)
				}
				wantEntries(t, ep.name+" token on the gateway", pageEntries(t, rest), filterEntries(latest, after(entries[len(entries)-1])))
			}
		}
	})
}

// runningStack starts a stack of the real binaries (the services with serviceArgs, the gateway with gatewayArgs),
// waits until it serves and stops it when the test ends.
func runningStack(t *testing.T, serviceArgs, gatewayArgs []string) *stack {
	t.Helper()
	st, err := startStackWith(t.TempDir(), serviceArgs, gatewayArgs)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := st.stop(); err != nil {
			t.Error(err)
		}
	})
	if err := waitStack(st); err != nil {
		t.Fatal(err)
	}
	return st
}

// A listing larger than the servers' largest message: one answer is refused RESOURCE_EXHAUSTED (as listings of
// ~1 900 models are with the default 64 MiB), ListAllModels returns it whole, in pages that each fit.
func TestListAllModelsBeyondTheMessageCap(t *testing.T) {
	const capBytes = 256 << 10
	capArg := []string{"--max_message_bytes", fmt.Sprint(capBytes)}
	st := runningStack(t, capArg, capArg)
	c := dial(t, st.gateway.address())
	// 12 models of 64 labels of 256 + 256 bytes each (the limits): about 33 KiB of ModelInfo per model, 400 KiB
	// together.
	labels := map[string]string{}
	for i := range 64 {
		labels[fmt.Sprintf("%02d%s", i, strings.Repeat("k", 254))] = strings.Repeat("v", 256)
	}
	var want []entry
	for i := range 12 {
		name := fmt.Sprintf("go-cap-%02d", i)
		if _, err := c.Generative.CreateModel(testContext(t), &generativev1.CreateModelRequest{
			Name: name, Spec: uniformSpec([]float64{0}, []float64{1}), Labels: labels}); err != nil {
			t.Fatal(err)
		}
		want = append(want, entry{name, 1, commonv1.ModelType_GENERATIVE, true})
	}
	direct := dial(t, st.generative.address())
	_, err := direct.Generative.ListModels(testContext(t), nil)
	wantCode(t, err, codes.ResourceExhausted)

	pages := 0
	var got []entry
	for page, err := range direct.Generative.ListModelsPages(testContext(t), nil) {
		if err != nil {
			t.Fatal(err)
		}
		if size := proto.Size(page); size > capBytes {
			t.Fatalf("a page of %d bytes", size)
		}
		pages++
		got = append(got, pageEntries(t, page)...)
	}
	wantEntries(t, "generative pages", got, want)
	if pages < 2 {
		t.Fatalf("%d models of 33 KiB in %d page(s) of at most %d bytes", len(got), pages, capBytes)
	}
	for _, list := range []func(context.Context, *commonv1.ListModelsRequest) (*commonv1.ListModelsResponse, error){
		direct.Generative.ListAllModels, c.Gateway.ListAllModels} {
		all, err := list(testContext(t), nil)
		if err != nil {
			t.Fatal(err)
		}
		wantEntries(t, "ListAllModels", modelEntries(all), want)
		if len(all.GetMissingBackends()) != 0 || len(all.GetModels()[11].GetLabels()) != 64 {
			t.Fatalf("missing_backends %q, labels of the last model %d", all.GetMissingBackends(), len(all.GetModels()[11].GetLabels()))
		}
	}
}

// A client whose receive limit (WithMaxMessageBytes 128 KiB) is below the servers' (the default 64 MiB): a page of
// 1000 entries would be larger than it takes, so its listings send that limit as MaxPageBytes and get every model,
// from a service and through the gateway (before, they failed RESOURCE_EXHAUSTED: received message larger than max).
func TestListAllModelsWithASmallReceiveLimit(t *testing.T) {
	const limit = 128 << 10
	st := runningStack(t, nil, nil)
	c := dial(t, st.gateway.address())
	// 80 models of a 4000-byte description: about 320 KiB of ModelInfo together.
	var want []entry
	for i := range 80 {
		name := fmt.Sprintf("go-small-%02d", i)
		if _, err := c.Generative.CreateModel(testContext(t), &generativev1.CreateModelRequest{
			Name: name, Spec: uniformSpec([]float64{0}, []float64{1}), Description: strings.Repeat("d", 4000)}); err != nil {
			t.Fatal(err)
		}
		want = append(want, entry{name, 1, commonv1.ModelType_GENERATIVE, true})
	}
	first, err := c.Generative.ListModels(testContext(t), &commonv1.ListModelsRequest{PageSize: maas.MaxPageSize})
	if err != nil {
		t.Fatal(err)
	}
	if size := proto.Size(first); size <= limit {
		t.Fatalf("the premise: a page of 1000 at the servers' limit is %d bytes, not above %d", size, limit)
	}
	small := []maas.Option{maas.WithMaxMessageBytes(limit)}
	gw, direct := dial(t, st.gateway.address(), small...), dial(t, st.generative.address(), small...)
	pages := 0
	for _, err := range direct.Generative.ListModelsPages(testContext(t), nil) {
		if err != nil {
			t.Fatal(err)
		}
		pages++
	}
	if pages < 3 {
		t.Fatalf("%d models of 4 KiB in %d page(s) of at most %d bytes", len(want), pages, limit)
	}
	for what, list := range map[string]func(context.Context, *commonv1.ListModelsRequest) (*commonv1.ListModelsResponse, error){
		"generative": direct.Generative.ListAllModels, "gateway": gw.Gateway.ListAllModels} {
		all, err := list(testContext(t), nil)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		wantEntries(t, what+" ListAllModels", modelEntries(all), want)
	}
	// One page asked for with ListModels is within the client's limit too (a review: it was not).
	one := &commonv1.ListModelsRequest{PageSize: maas.MaxPageSize}
	for what, list := range map[string]func(context.Context, *commonv1.ListModelsRequest) (*commonv1.ListModelsResponse, error){
		"generative": direct.Generative.ListModels, "gateway": gw.Gateway.ListModels} {
		page, err := list(testContext(t), one)
		if err != nil {
			t.Fatalf("%s ListModels of one page: %v", what, err)
		}
		if len(page.GetModels()) == 0 || len(page.GetModels()) >= len(want) || page.GetNextPageToken() == "" {
			t.Fatalf("%s ListModels of one page: %d models, token %q", what, len(page.GetModels()), page.GetNextPageToken())
		}
	}
	if one.GetMaxPageBytes() != 0 {
		t.Fatalf("ListModels modified the caller's request: max_page_bytes %d", one.GetMaxPageBytes())
	}
}

// fakeGateway answers ListModels with answer(request, index of the call), recording the requests.
type fakeGateway struct {
	gatewayv1.UnimplementedGatewayServer
	answer func(req *commonv1.ListModelsRequest, call int) (*commonv1.ListModelsResponse, error)

	mu       sync.Mutex
	requests []*commonv1.ListModelsRequest
}

func (f *fakeGateway) ListModels(_ context.Context, req *commonv1.ListModelsRequest) (*commonv1.ListModelsResponse, error) {
	f.mu.Lock()
	f.requests = append(f.requests, proto.CloneOf(req))
	call := len(f.requests) - 1
	f.mu.Unlock()
	return f.answer(req, call)
}

func (f *fakeGateway) sent() []*commonv1.ListModelsRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.requests)
}

func startFakeGateway(t *testing.T,
	answer func(*commonv1.ListModelsRequest, int) (*commonv1.ListModelsResponse, error)) (*maas.Client, *fakeGateway) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	fake := &fakeGateway{answer: answer}
	gatewayv1.RegisterGatewayServer(srv, fake)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return dial(t, lis.Addr().String()), fake
}

func models(names ...string) []*commonv1.ModelInfo {
	var out []*commonv1.ModelInfo
	for _, n := range names {
		out = append(out, &commonv1.ModelInfo{Name: n, Version: 1, Type: commonv1.ModelType_GENERATIVE})
	}
	return out
}

func modelNames(resp *commonv1.ListModelsResponse) []string {
	var out []string
	for _, m := range resp.GetModels() {
		out = append(out, m.GetName())
	}
	return out
}

// What the paging loop sends and makes of the answers, against servers that do what the real ones cannot be made
// to: ignore page_size (servers older than paging), report missing backends on several pages, answer a token that
// does not advance, fail on a later page.
func TestListAllModelsAgainstFakeServers(t *testing.T) {
	t.Run("a server older than paging answers everything at once", func(t *testing.T) {
		c, fake := startFakeGateway(t, func(*commonv1.ListModelsRequest, int) (*commonv1.ListModelsResponse, error) {
			return &commonv1.ListModelsResponse{Models: models("a", "b", "c"),
				UnreadableVersions: []*commonv1.UnreadableVersion{{Name: "bad", Version: 1, Code: "DATA_LOSS"}}}, nil
		})
		all, err := c.Gateway.ListAllModels(testContext(t), &commonv1.ListModelsRequest{AllVersions: true})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(modelNames(all), []string{"a", "b", "c"}) || len(all.GetUnreadableVersions()) != 1 {
			t.Fatalf("ListAllModels = %v", all)
		}
		// MaxPageBytes: the client's receive limit (WithMaxMessageBytes), unless the request sets one.
		if !proto.Equal(&commonv1.ListModelsRequest{AllVersions: true, PageSize: maas.MaxPageSize,
			MaxPageBytes: maas.DefaultMaxMessageBytes}, fake.sent()[0]) || len(fake.sent()) != 1 {
			t.Fatalf("requests %v", fake.sent())
		}
		if _, err := c.Gateway.ListAllModels(testContext(t), &commonv1.ListModelsRequest{MaxPageBytes: 5000}); err != nil {
			t.Fatal(err)
		}
		if got := fake.sent()[1].GetMaxPageBytes(); got != 5000 {
			t.Fatalf("max_page_bytes %d sent for 5000", got)
		}
	})

	t.Run("each page's request, missing backends once each", func(t *testing.T) {
		pages := []*commonv1.ListModelsResponse{
			{Models: models("a"), MissingBackends: []string{"discriminative: UNAVAILABLE: down"}, NextPageToken: "t1"},
			{Models: models("b"), MissingBackends: []string{"generative: UNAVAILABLE: down", "discriminative: UNAVAILABLE: down"},
				NextPageToken: "t2"},
			{Models: models("c"), MissingBackends: []string{"discriminative: UNAVAILABLE: down"}},
		}
		c, fake := startFakeGateway(t, func(_ *commonv1.ListModelsRequest, call int) (*commonv1.ListModelsResponse, error) {
			return pages[call], nil
		})
		all, err := c.Gateway.ListAllModels(testContext(t), &commonv1.ListModelsRequest{NamePrefix: "x", PageSize: 1})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(modelNames(all), []string{"a", "b", "c"}) ||
			!slices.Equal(all.GetMissingBackends(), []string{"discriminative: UNAVAILABLE: down", "generative: UNAVAILABLE: down"}) {
			t.Fatalf("ListAllModels = %v", all)
		}
		var tokens []string
		for _, req := range fake.sent() {
			if req.GetNamePrefix() != "x" || req.GetPageSize() != 1 {
				t.Fatalf("request %v", req)
			}
			tokens = append(tokens, req.GetPageToken())
		}
		if !slices.Equal(tokens, []string{"", "t1", "t2"}) {
			t.Fatalf("page tokens sent: %q", tokens)
		}
	})

	t.Run("a token that does not advance is an error, not an endless loop", func(t *testing.T) {
		c, fake := startFakeGateway(t, func(*commonv1.ListModelsRequest, int) (*commonv1.ListModelsResponse, error) {
			return &commonv1.ListModelsResponse{Models: models("a"), NextPageToken: "same"}, nil
		})
		_, err := c.Gateway.ListAllModels(testContext(t), nil)
		if e := wantCode(t, err, codes.Internal, "does not advance"); e.RPC != "Gateway.ListModels" || len(fake.sent()) != 2 {
			t.Fatalf("%v after %d requests", err, len(fake.sent()))
		}
		// A review: tokens A, B, A, ... looped forever.
		c, fake = startFakeGateway(t, func(req *commonv1.ListModelsRequest, _ int) (*commonv1.ListModelsResponse, error) {
			next := "A"
			if req.GetPageToken() == "A" {
				next = "B"
			}
			return &commonv1.ListModelsResponse{Models: models("a"), NextPageToken: next}, nil
		})
		_, err = c.Gateway.ListAllModels(testContext(t), nil)
		if wantCode(t, err, codes.Internal, "does not advance"); len(fake.sent()) != 3 {
			t.Fatalf("%v after %d requests", err, len(fake.sent()))
		}
	})

	t.Run("an error on a later page ends the listing; breaking out stops it", func(t *testing.T) {
		// The first page, then UNAVAILABLE for the second.
		c, fake := startFakeGateway(t, func(req *commonv1.ListModelsRequest, _ int) (*commonv1.ListModelsResponse, error) {
			if req.GetPageToken() != "" {
				return nil, status.Error(codes.Unavailable, "backend gone")
			}
			return &commonv1.ListModelsResponse{Models: models("a"), NextPageToken: "t1"}, nil
		})
		_, err := c.Gateway.ListAllModels(testContext(t), nil)
		wantCode(t, err, codes.Unavailable, "backend gone")
		var yielded []error
		for page, err := range c.Gateway.ListModelsPages(testContext(t), nil) {
			if (page == nil) == (err == nil) {
				t.Fatalf("page %v with error %v", page, err)
			}
			yielded = append(yielded, err)
		}
		if len(yielded) != 2 || yielded[0] != nil || maas.Code(yielded[1]) != codes.Unavailable {
			t.Fatalf("yielded %v", yielded)
		}
		before := len(fake.sent())
		for range c.Gateway.ListModelsPages(testContext(t), nil) {
			break
		}
		if got := len(fake.sent()) - before; got != 1 {
			t.Fatalf("breaking out after the first page: %d requests", got)
		}
	})
}
