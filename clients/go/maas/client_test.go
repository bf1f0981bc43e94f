package maas_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"iter"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/reflect/protoreflect"

	commonv1 "github.com/maas-project/maas/clients/go/gen/maas/common/v1"
	discriminativev1 "github.com/maas-project/maas/clients/go/gen/maas/discriminative/v1"
	gatewayv1 "github.com/maas-project/maas/clients/go/gen/maas/gateway/v1"
	generativev1 "github.com/maas-project/maas/clients/go/gen/maas/generative/v1"
	"github.com/maas-project/maas/clients/go/maas"
)

// Every RPC of the three services has a wrapper method of the same name whose shape follows the call kind:
// a new RPC in proto/ fails this test until it is wrapped.
func TestEveryRPCIsWrapped(t *testing.T) {
	wrappers := map[protoreflect.ServiceDescriptor]reflect.Type{
		generativev1.File_maas_generative_v1_generative_proto.Services().ByName("GenerativeService"):                 reflect.TypeOf(&maas.GenerativeClient{}),
		discriminativev1.File_maas_discriminative_v1_discriminative_proto.Services().ByName("DiscriminativeService"): reflect.TypeOf(&maas.DiscriminativeClient{}),
		gatewayv1.File_maas_gateway_v1_gateway_proto.Services().ByName("Gateway"):                                    reflect.TypeOf(&maas.GatewayClient{}),
	}
	total := 0
	for service, wrapper := range wrappers {
		methods := service.Methods()
		for i := 0; i < methods.Len(); i++ {
			m := methods.Get(i)
			total++
			method, ok := wrapper.MethodByName(string(m.Name()))
			if !ok {
				t.Errorf("%s.%s has no wrapper method %s.%s", service.FullName(), m.Name(), wrapper.Elem().Name(), m.Name())
				continue
			}
			// Streamed responses come back as an iterator (a func); single responses as (response, error).
			out := method.Type
			if m.IsStreamingServer() != (out.NumOut() == 1 && out.Out(0).Kind() == reflect.Func) {
				t.Errorf("%s: the result %v does not match the call kind (server streaming: %v)", m.FullName(), out, m.IsStreamingServer())
			}
		}
	}
	if total < 19 {
		t.Fatalf("only %d RPCs found in the descriptors", total)
	}
}

func TestGatewayListModelsAndBackends(t *testing.T) {
	c := dialGateway(t)
	if _, err := c.Generative.CreateModel(testContext(t), &generativev1.CreateModelRequest{
		Name: "go-gw-box", Spec: uniformSpec([]float64{0}, []float64{1})}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Discriminative.Train(testContext(t), &discriminativev1.TrainConfig{Name: "go-gw-text"},
		maas.Batches(corpus, 100)); err != nil {
		t.Fatal(err)
	}
	list, err := c.Gateway.ListModels(testContext(t), &commonv1.ListModelsRequest{NamePrefix: "go-gw-"})
	if err != nil {
		t.Fatal(err)
	}
	var types []commonv1.ModelType
	for _, m := range list.GetModels() {
		types = append(types, m.GetType())
	}
	if !slices.Equal(types, []commonv1.ModelType{commonv1.ModelType_GENERATIVE, commonv1.ModelType_DISCRIMINATIVE}) {
		t.Fatalf("Gateway.ListModels = %v", list)
	}
	// The gateway checks its backends every 200 ms here; both answer SERVING.
	deadline := time.Now().Add(callTimeout)
	for {
		backends, err := c.Gateway.GetBackends(testContext(t), nil)
		if err != nil {
			t.Fatal(err)
		}
		serving := 0
		for _, b := range backends.GetBackends() {
			if b.GetHealth() == gatewayv1.BackendHealth_SERVING {
				serving++
			}
		}
		if serving == 2 && len(backends.GetBackends()) == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("GetBackends = %v, want 2 SERVING", backends)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The same services answer directly, without the gateway.
	direct := dial(t, liveStack.generative.address())
	got, err := direct.Generative.ListModels(testContext(t), &commonv1.ListModelsRequest{NamePrefix: "go-gw-"})
	if err != nil || len(got.GetModels()) != 1 {
		t.Fatalf("direct ListModels = %v, %v", got, err)
	}
	// gRPC's own answer for a service the server lacks (with an empty message).
	if _, err = direct.Gateway.GetBackends(testContext(t), nil); maas.Code(err) != codes.Unimplemented {
		t.Fatalf("Gateway.GetBackends on the generative server: %v", err)
	}
}

func TestDeadlinesAndCancellation(t *testing.T) {
	c := dialGateway(t)
	if _, err := c.Generative.CreateModel(testContext(t), &generativev1.CreateModelRequest{
		Name: "go-deadline", Spec: uniformSpec([]float64{0, 0}, []float64{1, 1})}); err != nil {
		t.Fatal(err)
	}
	big := &generativev1.SampleRequest{Model: maas.Ref("go-deadline", 0), NumSamples: 10_000_000, BatchSize: 1000}

	// A slow reader of a long stream (10 000 batches, 200 s at 20 ms each) meets the context's deadline:
	// DEADLINE_EXCEEDED, as a typed error.
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	batches := 0
	var streamErr error
	for _, err := range c.Generative.Sample(ctx, big) {
		if err != nil {
			streamErr = err
			break
		}
		batches++
		time.Sleep(20 * time.Millisecond)
	}
	wantCode(t, streamErr, codes.DeadlineExceeded)
	if !errors.Is(streamErr, context.DeadlineExceeded) || batches >= 10_000 {
		t.Fatalf("after %d batches: %v", batches, streamErr)
	}

	// Cancelling the context ends the stream with CANCELLED.
	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	batches, streamErr = 0, nil
	for _, err := range c.Generative.Sample(ctx, big) {
		if err != nil {
			streamErr = err
			break
		}
		if batches++; batches == 3 {
			cancel()
		}
	}
	wantCode(t, streamErr, codes.Canceled)
	if !errors.Is(streamErr, context.Canceled) {
		t.Fatalf("errors.Is(%v, context.Canceled) is false", streamErr)
	}

	// Breaking out of the loop ends the call; the same sequence can be ranged over again (a new call).
	seq := c.Generative.Sample(testContext(t), big)
	for range 2 {
		for batch, err := range seq {
			if err != nil || batch.GetStartIndex() != 0 {
				t.Fatalf("first batch %v, %v", batch, err)
			}
			break
		}
	}

	// The default timeout applies to calls whose context has none.
	hurried := dial(t, liveStack.gateway.address(), maas.WithTimeout(time.Nanosecond))
	_, err := hurried.Generative.ListModels(context.Background(), nil)
	wantCode(t, err, codes.DeadlineExceeded)
	// ... and not to calls whose context has its own.
	if _, err := hurried.Generative.ListModels(testContext(t), nil); err != nil {
		t.Fatalf("ListModels with the context's deadline: %v", err)
	}
}

func TestClientStreamStopsPullingWhenTheServerRefuses(t *testing.T) {
	d := dialGateway(t).Discriminative
	// 10 000 batches of 16 KiB (160 MiB: more than any flow-control window lets through before the refusal).
	pulled := 0
	text := strings.Repeat("no label ", 16<<10/9)
	batches := func(yield func(*discriminativev1.TextBatch) bool) {
		for pulled < 10_000 {
			pulled++
			// A label is required: the server ends the call at the first batch.
			if !yield(&discriminativev1.TextBatch{Examples: []*discriminativev1.LabeledText{{Text: text}}}) {
				return
			}
		}
	}
	_, err := d.Train(testContext(t), &discriminativev1.TrainConfig{Name: "go-unlabeled"}, iter.Seq[*discriminativev1.TextBatch](batches))
	wantCode(t, err, codes.InvalidArgument, "label")
	if pulled == 10_000 {
		t.Fatal("Train kept pulling batches after the server had refused the call")
	}
}

// writePKI writes a CA, a server certificate for 127.0.0.1 and a client certificate (PEM files in dir).
func writePKI(t *testing.T, dir string) {
	t.Helper()
	newKey := func() *ecdsa.PrivateKey {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return key
	}
	write := func(name, kind string, der []byte) {
		if err := os.WriteFile(filepath.Join(dir, name), pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Now()
	caKey := newKey()
	caTemplate := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "maas go test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	caDER, err := x509.CreateCertificate(rand.Reader, caTemplate, caTemplate, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	write("ca.pem", "CERTIFICATE", caDER)
	for i, name := range []string{"server", "client"} {
		key := newKey()
		template := &x509.Certificate{SerialNumber: big.NewInt(int64(i + 2)), Subject: pkix.Name{CommonName: "maas " + name},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), KeyUsage: x509.KeyUsageDigitalSignature,
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
		if name == "server" {
			template.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
			template.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
			template.DNSNames = []string{"localhost"}
		}
		der, err := x509.CreateCertificate(rand.Reader, template, ca, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		keyDER, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		write(name+".pem", "CERTIFICATE", der)
		write(name+".key", "PRIVATE KEY", keyDER)
	}
}

// A generative server with mutual TLS and a bearer token: the client's TLS, client-certificate and token options
// each matter.
func TestMutualTLSAndBearerToken(t *testing.T) {
	dir := t.TempDir()
	writePKI(t, dir)
	pki := func(name string) string { return filepath.Join(dir, name) }
	if err := os.WriteFile(pki("token"), []byte("  go-s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	srv, err := startServer("maas-generative", "--model_dir", filepath.Join(dir, "models"),
		"--tls_cert_file", pki("server.pem"), "--tls_key_file", pki("server.key"),
		"--tls_client_ca_file", pki("ca.pem"), "--auth_token_file", pki("token"))
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := srv.stop(); err != nil {
			t.Error(err)
		}
	}()
	tlsOpts := []maas.Option{maas.WithTLS(pki("ca.pem")), maas.WithClientCertificate(pki("client.pem"), pki("client.key"))}
	create := func(c *maas.Client) error {
		_, err := c.Generative.CreateModel(testContext(t), &generativev1.CreateModelRequest{
			Name: "go-secure", Spec: uniformSpec([]float64{0}, []float64{1})})
		return err
	}

	withToken := dial(t, srv.address(), append(tlsOpts, maas.WithBearerTokenFile(pki("token")))...)
	if err := create(withToken); err != nil {
		t.Fatalf("mutual TLS + token: %v", err)
	}
	noToken := dial(t, srv.address(), tlsOpts...)
	wantCode(t, create(noToken), codes.Unauthenticated)
	if _, err := noToken.Generative.ListModels(testContext(t), nil); err != nil { // reads need no token
		t.Fatalf("ListModels without a token: %v", err)
	}
	wrongToken := dial(t, srv.address(), append(tlsOpts, maas.WithBearerToken("not-it"))...)
	wantCode(t, create(wrongToken), codes.PermissionDenied)

	// Without a client certificate, or without TLS, the handshake fails.
	noCert := dial(t, srv.address(), maas.WithTLS(pki("ca.pem")), maas.WithBearerToken("go-s3cret"))
	_, err = noCert.Generative.ListModels(testContext(t), nil)
	wantCode(t, err, codes.Unavailable)
	plain := dial(t, srv.address())
	_, err = plain.Generative.ListModels(testContext(t), nil)
	wantCode(t, err, codes.Unavailable)

	// Option errors are reported by Dial.
	for _, opt := range []maas.Option{maas.WithTLS(pki("missing.pem")), maas.WithBearerToken(" "),
		maas.WithBearerTokenFile(pki("missing")), maas.WithClientCertificate(pki("ca.pem"), pki("client.key"))} {
		if _, err := maas.Dial(srv.address(), opt); err == nil {
			t.Error("Dial accepted a bad option")
		}
	}
	if _, err := maas.Dial(srv.address(), maas.WithBearerToken("go-s3cret"),
		maas.WithBearerTokenFile(pki("token"))); err == nil || !strings.Contains(err.Error(), "given twice") {
		t.Errorf("Dial with a token and a token file: %v", err)
	}
}

// A token the authorization header cannot carry (not ASCII, a control character) is refused by Dial, in a message
// that does not quote it; it used to be taken, and every call then failed with INTERNAL.
func TestBearerTokenThatIsNoHeaderValue(t *testing.T) {
	path := filepath.Join(t.TempDir(), "token")
	for _, token := range []string{"s3cr\u00e9t-9xq", "line-one\nline-two", "tabbed\tzz9q", "deleted\x7fzz9q", "emoji-\U0001F600"} {
		if err := os.WriteFile(path, []byte(token+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		for _, opt := range []maas.Option{maas.WithBearerToken(token), maas.WithBearerTokenFile(path)} {
			_, err := maas.Dial("127.0.0.1:1", opt)
			if err == nil || !strings.Contains(err.Error(), "cannot be sent in the authorization header: its character") {
				t.Fatalf("Dial with token %q: %v", token, err)
			}
			for _, piece := range strings.FieldsFunc(token, func(r rune) bool { return r < 0x20 || r > 0x7e }) {
				if len(piece) >= 4 && strings.Contains(err.Error(), piece) {
					t.Fatalf("the error quotes the token: %v", err)
				}
			}
		}
	}
	c, err := maas.Dial("127.0.0.1:1", maas.WithBearerToken("  printable ASCII, spaces too ~  "))
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
}

// Leaving a ClassifyStream loop early cancels the call and stops the goroutine that reads the requests, even from
// an endless source.
func TestBidiStreamEarlyExitStopsTheSender(t *testing.T) {
	d := dialGateway(t).Discriminative
	if _, err := d.Train(testContext(t), &discriminativev1.TrainConfig{Name: "go-bidi"}, maas.Batches(corpus, 100)); err != nil {
		t.Fatal(err)
	}
	var done atomic.Bool // set when the request source has been told to stop
	endless := func(yield func(*discriminativev1.ClassifyRequest) bool) {
		defer done.Store(true)
		for yield(&discriminativev1.ClassifyRequest{Model: maas.Ref("go-bidi", 0), Texts: []string{"a late goal"}}) {
		}
	}
	ctx, cancel := context.WithCancel(context.Background()) // no deadline: only leaving the loop may end the call
	defer cancel()
	responses := 0
	for resp, err := range d.ClassifyStream(ctx, endless) {
		if err != nil {
			t.Fatal(err)
		}
		if resp.GetResults()[0].GetLabel() != "sports" {
			t.Fatalf("response %v", resp)
		}
		if responses++; responses == 5 {
			break
		}
	}
	// Without the cancellation the sender would block in Send (flow control) and never stop reading the source.
	for deadline := time.Now().Add(callTimeout); !done.Load(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the request source is still being read after the loop ended")
		}
	}
}

// WithMaxMessageBytes bounds what the client accepts.
func TestMaxMessageBytes(t *testing.T) {
	g := dial(t, liveStack.gateway.address(), maas.WithMaxMessageBytes(1024)).Generative
	if _, err := g.CreateModel(testContext(t), &generativev1.CreateModelRequest{
		Name: "go-small-messages", Spec: uniformSpec([]float64{0, 0}, []float64{1, 1})}); err != nil {
		t.Fatal(err)
	}
	for _, err := range g.Sample(testContext(t), &generativev1.SampleRequest{
		Model: maas.Ref("go-small-messages", 0), NumSamples: 1000, BatchSize: 1000}) {
		wantCode(t, err, codes.ResourceExhausted)
		break
	}
}
