package deploy

import (
	"fmt"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// Every kind the manifests may contain, by apiVersion/kind. An object of any other kind fails the test.
var kinds = map[string]func() any{
	"v1/ConfigMap":                            func() any { return &corev1.ConfigMap{} },
	"v1/Namespace":                            func() any { return &corev1.Namespace{} },
	"v1/PersistentVolumeClaim":                func() any { return &corev1.PersistentVolumeClaim{} },
	"v1/Service":                              func() any { return &corev1.Service{} },
	"v1/ServiceAccount":                       func() any { return &corev1.ServiceAccount{} },
	"apps/v1/Deployment":                      func() any { return &appsv1.Deployment{} },
	"batch/v1/Job":                            func() any { return &batchv1.Job{} },
	"policy/v1/PodDisruptionBudget":           func() any { return &policyv1.PodDisruptionBudget{} },
	"autoscaling/v2/HorizontalPodAutoscaler":  func() any { return &autoscalingv2.HorizontalPodAutoscaler{} },
	"networking.k8s.io/v1/NetworkPolicy":      func() any { return &networkingv1.NetworkPolicy{} },
	"security.istio.io/v1/PeerAuthentication": func() any { return &PeerAuthentication{} },
	"networking.istio.io/v1/DestinationRule":  func() any { return &DestinationRule{} },
	"networking.istio.io/v1/VirtualService":   func() any { return &VirtualService{} },
}

// decodeStrict decodes one YAML document into its API type; an unknown or misspelt field is an error
// (sigs.k8s.io/yaml: YAML -> JSON, then a JSON decoder that disallows unknown fields), and so is a
// duplicate key. The Istio kinds then get the enum and duration checks their CRD schemas make.
func decodeStrict(apiVersion, kind string, doc []byte) (any, error) {
	make, ok := kinds[apiVersion+"/"+kind]
	if !ok {
		return nil, fmt.Errorf("kind not known to the validation (add it to kinds in tests/deploy)")
	}
	v := make()
	if err := yaml.UnmarshalStrict(doc, v); err != nil {
		return nil, err
	}
	if c, ok := v.(interface{ check() error }); ok {
		if err := c.check(); err != nil {
			return nil, err
		}
	}
	return v, nil
}

// The Istio CRDs' fields the manifests use, from istio.io/api (networking/v1, security/v1): the same JSON
// names, so a misspelt or unsupported field fails the strict decode. Only what maas needs is declared:
// a field Istio has and maas does not use yet fails too, and must be added here on purpose.

type PeerAuthentication struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		Selector *struct {
			MatchLabels map[string]string `json:"matchLabels"`
		} `json:"selector,omitempty"`
		Mtls *struct {
			Mode string `json:"mode"`
		} `json:"mtls,omitempty"`
		PortLevelMtls map[string]struct {
			Mode string `json:"mode"`
		} `json:"portLevelMtls,omitempty"`
	} `json:"spec"`
}

func (p *PeerAuthentication) check() error {
	if p.Spec.Mtls != nil {
		return oneOf("spec.mtls.mode", p.Spec.Mtls.Mode, "UNSET", "DISABLE", "PERMISSIVE", "STRICT")
	}
	return nil
}

type DestinationRule struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		Host          string         `json:"host"`
		TrafficPolicy *TrafficPolicy `json:"trafficPolicy,omitempty"`
		ExportTo      []string       `json:"exportTo,omitempty"`
	} `json:"spec"`
}

type TrafficPolicy struct {
	LoadBalancer *struct {
		Simple string `json:"simple"`
	} `json:"loadBalancer,omitempty"`
	ConnectionPool *struct {
		TCP *struct {
			MaxConnections int32  `json:"maxConnections,omitempty"`
			ConnectTimeout string `json:"connectTimeout,omitempty"`
		} `json:"tcp,omitempty"`
		HTTP *struct {
			HTTP1MaxPendingRequests  int32  `json:"http1MaxPendingRequests,omitempty"`
			HTTP2MaxRequests         int32  `json:"http2MaxRequests,omitempty"`
			MaxRequestsPerConnection int32  `json:"maxRequestsPerConnection,omitempty"`
			MaxRetries               int32  `json:"maxRetries,omitempty"`
			IdleTimeout              string `json:"idleTimeout,omitempty"`
		} `json:"http,omitempty"`
	} `json:"connectionPool,omitempty"`
	OutlierDetection *struct {
		ConsecutiveGatewayErrors *uint32 `json:"consecutiveGatewayErrors,omitempty"`
		Consecutive5xxErrors     *uint32 `json:"consecutive5xxErrors,omitempty"`
		Interval                 string  `json:"interval,omitempty"`
		BaseEjectionTime         string  `json:"baseEjectionTime,omitempty"`
		MaxEjectionPercent       int32   `json:"maxEjectionPercent,omitempty"`
		MinHealthPercent         int32   `json:"minHealthPercent,omitempty"`
	} `json:"outlierDetection,omitempty"`
	TLS *struct {
		Mode string `json:"mode"`
	} `json:"tls,omitempty"`
}

func (d *DestinationRule) check() error {
	if d.Spec.Host == "" {
		return fmt.Errorf("spec.host is required")
	}
	tp := d.Spec.TrafficPolicy
	if tp == nil {
		return nil
	}
	if tp.LoadBalancer != nil {
		if err := oneOf("loadBalancer.simple", tp.LoadBalancer.Simple, "UNSPECIFIED", "RANDOM",
			"PASSTHROUGH", "ROUND_ROBIN", "LEAST_REQUEST", "LEAST_CONN"); err != nil {
			return err
		}
	}
	if tp.TLS != nil {
		if err := oneOf("tls.mode", tp.TLS.Mode, "DISABLE", "SIMPLE", "MUTUAL", "ISTIO_MUTUAL"); err != nil {
			return err
		}
	}
	if od := tp.OutlierDetection; od != nil {
		for name, d := range map[string]string{"interval": od.Interval, "baseEjectionTime": od.BaseEjectionTime} {
			if err := duration("outlierDetection."+name, d); err != nil {
				return err
			}
		}
		if od.MaxEjectionPercent < 0 || od.MaxEjectionPercent > 100 {
			return fmt.Errorf("outlierDetection.maxEjectionPercent %d not in [0, 100]", od.MaxEjectionPercent)
		}
	}
	return nil
}

type VirtualService struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		Hosts    []string    `json:"hosts"`
		Gateways []string    `json:"gateways,omitempty"`
		HTTP     []HTTPRoute `json:"http"`
		ExportTo []string    `json:"exportTo,omitempty"`
	} `json:"spec"`
}

type HTTPRoute struct {
	Name  string `json:"name,omitempty"`
	Match []struct {
		Name string       `json:"name,omitempty"`
		URI  *StringMatch `json:"uri,omitempty"`
	} `json:"match,omitempty"`
	Route []struct {
		Destination struct {
			Host   string `json:"host"`
			Subset string `json:"subset,omitempty"`
			Port   *struct {
				Number uint32 `json:"number"`
			} `json:"port,omitempty"`
		} `json:"destination"`
		Weight int32 `json:"weight,omitempty"`
	} `json:"route"`
	Timeout string `json:"timeout,omitempty"`
	Retries *struct {
		Attempts      int32  `json:"attempts"`
		PerTryTimeout string `json:"perTryTimeout,omitempty"`
		RetryOn       string `json:"retryOn,omitempty"`
	} `json:"retries,omitempty"`
}

type StringMatch struct {
	Exact  string `json:"exact,omitempty"`
	Prefix string `json:"prefix,omitempty"`
	Regex  string `json:"regex,omitempty"`
}

// Envoy's retry_on conditions for gRPC and HTTP (what Istio passes through).
var retryOnValues = map[string]bool{
	"5xx": true, "gateway-error": true, "reset": true, "connect-failure": true, "retriable-4xx": true,
	"refused-stream": true, "retriable-status-codes": true, "cancelled": true, "deadline-exceeded": true,
	"internal": true, "resource-exhausted": true, "unavailable": true,
}

func (v *VirtualService) check() error {
	if len(v.Spec.Hosts) == 0 {
		return fmt.Errorf("spec.hosts is required")
	}
	for i, r := range v.Spec.HTTP {
		where := fmt.Sprintf("spec.http[%d] (%s)", i, r.Name)
		if len(r.Route) == 0 {
			return fmt.Errorf("%s: route is required", where)
		}
		if err := duration(where+".timeout", r.Timeout); err != nil {
			return err
		}
		if r.Retries != nil {
			if r.Retries.Attempts < 0 {
				return fmt.Errorf("%s.retries.attempts < 0", where)
			}
			if err := duration(where+".retries.perTryTimeout", r.Retries.PerTryTimeout); err != nil {
				return err
			}
			if r.Retries.RetryOn != "" {
				for _, c := range splitComma(r.Retries.RetryOn) {
					if !retryOnValues[c] {
						return fmt.Errorf("%s.retries.retryOn: unknown condition %q", where, c)
					}
				}
			}
		}
		for j, m := range r.Match {
			if m.URI != nil && nonEmpty(m.URI.Exact, m.URI.Prefix, m.URI.Regex) != 1 {
				return fmt.Errorf("%s.match[%d].uri: set exactly one of exact, prefix, regex", where, j)
			}
		}
	}
	return nil
}

func oneOf(field, value string, allowed ...string) error {
	for _, a := range allowed {
		if value == a {
			return nil
		}
	}
	return fmt.Errorf("%s: %q is not one of %v", field, value, allowed)
}

func duration(field, value string) error {
	if value == "" {
		return nil
	}
	if _, err := time.ParseDuration(value); err != nil {
		return fmt.Errorf("%s: %v", field, err)
	}
	return nil
}

func splitComma(s string) []string {
	var out []string
	start := 0
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == ',' {
			if i > start {
				out = append(out, s[start:i])
			}
			start = i + 1
		}
	}
	return out
}

func nonEmpty(values ...string) int {
	n := 0
	for _, v := range values {
		if v != "" {
			n++
		}
	}
	return n
}
