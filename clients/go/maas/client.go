package maas

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	discriminativev1 "github.com/maas-project/maas/clients/go/gen/maas/discriminative/v1"
	gatewayv1 "github.com/maas-project/maas/clients/go/gen/maas/gateway/v1"
	generativev1 "github.com/maas-project/maas/clients/go/gen/maas/generative/v1"
)

// DefaultTimeout is the deadline given to unary and client-streaming calls whose context has none.
const DefaultTimeout = 30 * time.Second

// DefaultMaxMessageBytes is the largest message sent or received, as the servers' default --max_message_bytes.
const DefaultMaxMessageBytes = 64 << 20

// DefaultReconnectBackoffMax is the longest wait between two attempts to connect to a server that is down. grpc-go's
// own is 120 s (first wait 1 s, then x1.6 each time): after an outage of a minute calls kept failing at once with
// UNAVAILABLE for 6-13 s after the server was back, and for minutes after a longer outage. 5 s bounds that to about
// 6 s (the cap plus grpc-go's 20% jitter) whatever the outage, while a fleet of clients retries a recovering server
// at a fifth of the rate of the gateway's 1 s cap (one process's few channels to its local backends).
const DefaultReconnectBackoffMax = 5 * time.Second

// minConnectTimeout is the time a connection attempt is given, grpc-go's default: WithConnectParams sets it too.
const minConnectTimeout = 20 * time.Second

// Client is one gRPC connection to a maas endpoint (the gateway, or one service directly) with a wrapper per
// service. It is safe for concurrent use; Close it when done.
type Client struct {
	// Generative wraps maas.generative.v1.GenerativeService.
	Generative *GenerativeClient
	// Discriminative wraps maas.discriminative.v1.DiscriminativeService.
	Discriminative *DiscriminativeClient
	// Gateway wraps maas.gateway.v1.Gateway (only the gateway serves it).
	Gateway *GatewayClient

	conn *grpc.ClientConn
}

// An Option configures Dial.
type Option func(*settings) error

type settings struct {
	tlsConfig       *tls.Config
	token           string
	timeout         time.Duration
	maxMessageBytes int
	// reconnectBackoffMax is the cap of the wait between connection attempts (WithReconnectBackoffMax).
	reconnectBackoffMax time.Duration
	dialOptions         []grpc.DialOption
}

// WithTLS connects over TLS, verifying the server against the CA certificates in the PEM file caFile
// ("" = the system's roots).
func WithTLS(caFile string) Option {
	return func(s *settings) error {
		cfg := s.tls()
		if caFile == "" {
			return nil
		}
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return fmt.Errorf("maas: WithTLS: reading the CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return fmt.Errorf("maas: WithTLS: no PEM certificate in %s", caFile)
		}
		cfg.RootCAs = pool
		return nil
	}
}

// WithClientCertificate presents the certificate and key in these PEM files (mutual TLS); implies TLS.
func WithClientCertificate(certFile, keyFile string) Option {
	return func(s *settings) error {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return fmt.Errorf("maas: WithClientCertificate: %w", err)
		}
		cfg := s.tls()
		cfg.Certificates = append(cfg.Certificates, cert)
		return nil
	}
}

// WithTLSConfig connects over TLS with this configuration (replaces what WithTLS and WithClientCertificate set).
func WithTLSConfig(cfg *tls.Config) Option {
	return func(s *settings) error {
		if cfg == nil {
			return errors.New("maas: WithTLSConfig: nil config")
		}
		s.tlsConfig = cfg.Clone()
		return nil
	}
}

// WithBearerToken sends "authorization: Bearer <token>" with every call (servers started with
// --auth_token_file require it for CreateModel, FitModel, Train and DeleteModel). The token is sent over
// plaintext connections too: use TLS anywhere but loopback. Only one of WithBearerToken and
// WithBearerTokenFile may be given (as the Python and TypeScript clients refuse token with token_file). The token
// (surrounding whitespace ignored) must be printable ASCII, space to '~', which is all the header carries: Dial
// refuses another one (a non-ASCII or control character) with an error that does not quote it.
func WithBearerToken(token string) Option {
	return func(s *settings) error {
		token = strings.TrimSpace(token)
		if token == "" {
			return errors.New("maas: WithBearerToken: empty token")
		}
		if problem := headerValueProblem(token); problem != "" {
			return fmt.Errorf("maas: WithBearerToken: %s", problem)
		}
		if s.token != "" {
			return errors.New("maas: a bearer token was given twice (WithBearerToken / WithBearerTokenFile): give one")
		}
		s.token = token
		return nil
	}
}

// WithBearerTokenFile reads the token from a file (surrounding whitespace ignored, as the servers do).
func WithBearerTokenFile(path string) Option {
	return func(s *settings) error {
		data, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("maas: WithBearerTokenFile: %w", err)
		}
		if strings.TrimSpace(string(data)) == "" {
			return fmt.Errorf("maas: WithBearerTokenFile: %s is empty", path)
		}
		if problem := headerValueProblem(strings.TrimSpace(string(data))); problem != "" {
			return fmt.Errorf("maas: WithBearerTokenFile: the token in %s: %s", path, problem)
		}
		return WithBearerToken(string(data))(s)
	}
}

// WithTimeout sets the deadline of unary and client-streaming calls whose context has none (default
// DefaultTimeout; 0 = no default deadline).
func WithTimeout(d time.Duration) Option {
	return func(s *settings) error {
		if d < 0 {
			return fmt.Errorf("maas: WithTimeout: negative duration %v", d)
		}
		s.timeout = d
		return nil
	}
}

// WithMaxMessageBytes sets the largest message sent or received (default DefaultMaxMessageBytes).
func WithMaxMessageBytes(n int) Option {
	return func(s *settings) error {
		if n <= 0 {
			return fmt.Errorf("maas: WithMaxMessageBytes: %d is not positive", n)
		}
		s.maxMessageBytes = n
		return nil
	}
}

// WithReconnectBackoffMax sets the longest wait between two attempts to connect to a server that is down (default
// DefaultReconnectBackoffMax, 5 s; grpc-go's own is 120 s), so that calls succeed again within about d (plus
// grpc-go's 20% jitter) after the server is back; until then they fail at once with UNAVAILABLE. The first wait is
// grpc-go's 1 s, or d when shorter. d must be positive. A grpc.WithConnectParams given to WithDialOptions wins.
func WithReconnectBackoffMax(d time.Duration) Option {
	return func(s *settings) error {
		if d <= 0 {
			return fmt.Errorf("maas: WithReconnectBackoffMax: %v is not positive", d)
		}
		s.reconnectBackoffMax = d
		return nil
	}
}

// WithDialOptions adds grpc-go dial options (interceptors, keepalive, a custom resolver, ...).
func WithDialOptions(opts ...grpc.DialOption) Option {
	return func(s *settings) error {
		s.dialOptions = append(s.dialOptions, opts...)
		return nil
	}
}

// newSettings applies opts to the defaults.
func newSettings(opts []Option) (settings, error) {
	s := settings{timeout: DefaultTimeout, maxMessageBytes: DefaultMaxMessageBytes,
		reconnectBackoffMax: DefaultReconnectBackoffMax}
	for _, opt := range opts {
		if err := opt(&s); err != nil {
			return settings{}, err
		}
	}
	return s, nil
}

// connectParams is grpc-go's default backoff capped at reconnectBackoffMax (its first wait no longer than the cap),
// with grpc-go's default connection attempt time (WithConnectParams would otherwise set it to 0).
func (s *settings) connectParams() grpc.ConnectParams {
	config := backoff.DefaultConfig
	config.MaxDelay = s.reconnectBackoffMax
	config.BaseDelay = min(config.BaseDelay, config.MaxDelay)
	return grpc.ConnectParams{Backoff: config, MinConnectTimeout: minConnectTimeout}
}

func (s *settings) tls() *tls.Config {
	if s.tlsConfig == nil {
		s.tlsConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	return s.tlsConfig
}

// Dial makes a client for target, a gRPC target such as "127.0.0.1:50051" or "dns:///maas:50051". It does not
// wait for the connection (the first call does; see WaitServing). Without TLS options it connects in plaintext.
func Dial(target string, opts ...Option) (*Client, error) {
	s, err := newSettings(opts)
	if err != nil {
		return nil, err
	}
	dialOptions := []grpc.DialOption{
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(s.maxMessageBytes),
			grpc.MaxCallSendMsgSize(s.maxMessageBytes)),
		grpc.WithConnectParams(s.connectParams()),
	}
	if s.tlsConfig != nil {
		dialOptions = append(dialOptions, grpc.WithTransportCredentials(credentials.NewTLS(s.tlsConfig)))
	} else {
		dialOptions = append(dialOptions, grpc.WithTransportCredentials(insecure.NewCredentials()))
	}
	if s.token != "" {
		dialOptions = append(dialOptions, grpc.WithPerRPCCredentials(bearerToken(s.token)))
	}
	dialOptions = append(dialOptions, s.dialOptions...)
	conn, err := grpc.NewClient(target, dialOptions...)
	if err != nil {
		return nil, fmt.Errorf("maas: Dial %q: %w", target, err)
	}
	c := caller{timeout: s.timeout, maxMessageBytes: s.maxMessageBytes}
	return &Client{
		Generative:     &GenerativeClient{caller: c, raw: generativev1.NewGenerativeServiceClient(conn)},
		Discriminative: &DiscriminativeClient{caller: c, raw: discriminativev1.NewDiscriminativeServiceClient(conn), conn: conn},
		Gateway:        &GatewayClient{caller: c, raw: gatewayv1.NewGatewayClient(conn)},
		conn:           conn,
	}, nil
}

// Conn returns the underlying connection (for other services, such as grpc.health.v1 or reflection).
func (c *Client) Conn() *grpc.ClientConn { return c.conn }

// Close closes the connection; calls in flight fail with CANCELLED.
func (c *Client) Close() error { return c.conn.Close() }

// WaitServing polls grpc.health.v1 until service ("" = the whole server, or e.g.
// "maas.generative.v1.GenerativeService") answers SERVING, or ctx ends (then the last error is returned).
func (c *Client) WaitServing(ctx context.Context, service string) error {
	health := healthpb.NewHealthClient(c.conn)
	for {
		attempt, cancel := context.WithTimeout(ctx, time.Second)
		resp, err := health.Check(attempt, &healthpb.HealthCheckRequest{Service: service})
		cancel()
		if err == nil && resp.GetStatus() == healthpb.HealthCheckResponse_SERVING {
			return nil
		}
		last := wrapError("Health.Check", err)
		if err == nil {
			last = fmt.Errorf("maas: health of %q is %s", service, resp.GetStatus())
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("maas: WaitServing(%q): %w (last: %v)", service, ctx.Err(), last)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// headerValueProblem says why token cannot be sent in the authorization header, which carries printable ASCII only
// (space to '~'), or "" when it can. It names the character's position and kind, never the token (errors are
// logged): grpc-go would fail every call with INTERNAL instead.
func headerValueProblem(token string) string {
	runes := []rune(token)
	for i, r := range runes {
		switch {
		case r < 0x20 || r == 0x7f:
			return fmt.Sprintf("the token cannot be sent in the authorization header: its character %d of %d is a "+
				"control character (U+%04X); a token is printable ASCII (space to ~)", i+1, len(runes), r)
		case r > 0x7e:
			return fmt.Sprintf("the token cannot be sent in the authorization header: its character %d of %d is not "+
				"ASCII; a token is printable ASCII (space to ~)", i+1, len(runes))
		}
	}
	return ""
}

// bearerToken is the per-call credential of WithBearerToken.
type bearerToken string

func (t bearerToken) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(t)}, nil
}

func (bearerToken) RequireTransportSecurity() bool { return false }

// caller holds what every service wrapper shares: the default deadline and the largest message received (the
// listings ask for pages no larger: ListModelsRequest.MaxPageBytes).
type caller struct {
	timeout         time.Duration
	maxMessageBytes int
}

// withDefaultDeadline gives ctx the client's default timeout when it has no deadline.
func (c caller) withDefaultDeadline(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok || c.timeout == 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, c.timeout)
}
