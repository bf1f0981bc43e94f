package maas_test

// The iterators a caller gives to the streaming calls (FitModel, Train, Evaluate and their *Bytes variants take the
// chunks, ClassifyStream and ClassifyStreamBytes the requests): what happens when one panics or blocks.

import (
	"context"
	"errors"
	"iter"
	"runtime"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	commonv1 "github.com/maas-project/maas/clients/go/gen/maas/common/v1"
	discriminativev1 "github.com/maas-project/maas/clients/go/gen/maas/discriminative/v1"
	generativev1 "github.com/maas-project/maas/clients/go/gen/maas/generative/v1"
	"github.com/maas-project/maas/clients/go/maas"
)

// errProducer is what the producers below panic with: recover() must give back this very value.
var errProducer = errors.New("producer failed")

// recovered runs f and returns what it panicked with (nil when it returned).
func recovered(f func()) (p any) {
	defer func() { p = recover() }()
	f()
	return nil
}

// stalledCalls are the five client-streaming calls, each given a first chunk and then a producer that waits on
// release: they return the call's error.
func stalledCalls(t *testing.T, c *maas.Client) map[string]func(ctx context.Context, release <-chan struct{}, stopped func(bool)) error {
	t.Helper()
	d := c.Discriminative
	if _, err := d.Train(testContext(t), &discriminativev1.TrainConfig{Name: "go-stalled"}, maas.Batches(corpus, 100)); err != nil {
		t.Fatal(err)
	}
	row, _ := maas.NewMatrix([][]float64{{0.5, 0.5}})
	fitConfig := &generativev1.FitConfig{Name: "go-stalled",
		Family: &generativev1.FitConfig_Uniform{Uniform: &generativev1.UniformFit{}}}
	batch := &discriminativev1.TextBatch{Examples: corpus[:2]}
	bytesBatch := []maas.LabeledBytes{{Text: []byte(corpus[0].GetText()), Label: corpus[0].GetLabel()}}
	return map[string]func(context.Context, <-chan struct{}, func(bool)) error{
		"FitModel": func(ctx context.Context, release <-chan struct{}, stopped func(bool)) error {
			_, err := c.Generative.FitModel(ctx, fitConfig, stall(row, release, stopped))
			return err
		},
		"Train": func(ctx context.Context, release <-chan struct{}, stopped func(bool)) error {
			_, err := d.Train(ctx, &discriminativev1.TrainConfig{Name: "go-stalled-train"},
				stall(batch, release, stopped))
			return err
		},
		"Evaluate": func(ctx context.Context, release <-chan struct{}, stopped func(bool)) error {
			_, err := d.Evaluate(ctx, &discriminativev1.EvaluateConfig{Model: maas.Ref("go-stalled", 0)},
				stall(batch, release, stopped))
			return err
		},
		"TrainBytes": func(ctx context.Context, release <-chan struct{}, stopped func(bool)) error {
			_, err := d.TrainBytes(ctx, &discriminativev1.TrainConfig{Name: "go-stalled-train"},
				stall(bytesBatch, release, stopped))
			return err
		},
		"EvaluateBytes": func(ctx context.Context, release <-chan struct{}, stopped func(bool)) error {
			_, err := d.EvaluateBytes(ctx, &discriminativev1.EvaluateConfig{Model: maas.Ref("go-stalled", 0)},
				stall(bytesBatch, release, stopped))
			return err
		},
	}
}

// stall yields first, waits for release (as a producer waiting for data: a pipe, a socket, a channel), then
// yields first again and tells stopped whether that yield said to stop.
func stall[T any](first T, release <-chan struct{}, stopped func(bool)) iter.Seq[T] {
	return func(yield func(T) bool) {
		if !yield(first) {
			return
		}
		<-release
		stopped(!yield(first))
	}
}

// A client-streaming call honours its deadline (the client's default, as here, or the context's) and the
// cancellation of its context while the chunks iterator blocks: it fails at once, and the producer, when it yields
// again, is told to stop (yield returns false); no goroutine is left once it has returned.
func TestClientStreamEndsWhileTheIteratorBlocks(t *testing.T) {
	c := dialGateway(t, maas.WithTimeout(300*time.Millisecond))
	calls := stalledCalls(t, c)
	baseline := runtime.NumGoroutine()
	for name, call := range calls {
		for _, how := range []string{"deadline", "cancel"} {
			ctx, cancel := context.WithCancel(context.Background()) // the client's default deadline
			want := codes.DeadlineExceeded
			if how == "cancel" {
				ctx, cancel = context.WithTimeout(context.Background(), time.Minute)
				want = codes.Canceled
				time.AfterFunc(300*time.Millisecond, cancel)
			}
			// Released after the call returns; at the latest after 4 s, so that a call that waits for the producer
			// fails the test rather than hang it.
			release := make(chan struct{})
			var releaseOnce sync.Once
			releaseNow := func() { releaseOnce.Do(func() { close(release) }) }
			time.AfterFunc(4*time.Second, releaseNow)
			var mu sync.Mutex
			var told, returned bool
			done := make(chan struct{})
			stopped := func(stop bool) {
				mu.Lock()
				told, returned = stop, true
				mu.Unlock()
				close(done)
			}
			start := time.Now()
			err := call(ctx, release, stopped)
			took := time.Since(start)
			cancel()
			if maas.Code(err) != want || took > 3*time.Second {
				t.Errorf("%s (%s) with a blocked producer: %v after %v, want %v within 3 s",
					name, how, err, took.Round(time.Millisecond), want)
			}
			releaseNow()
			select {
			case <-done:
			case <-time.After(callTimeout):
				t.Fatalf("%s (%s): the producer was not resumed", name, how)
			}
			mu.Lock()
			if !returned || !told {
				t.Errorf("%s (%s): the producer's yield after the call ended returned true", name, how)
			}
			mu.Unlock()
		}
	}
	// The goroutine that ran each producer ended with it (the calls themselves were cancelled).
	for deadline := time.Now().Add(callTimeout); runtime.NumGoroutine() > baseline; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines, %d before the calls", runtime.NumGoroutine(), baseline)
		}
	}
}

// A panic of the chunks iterator reaches the caller of FitModel / Train / Evaluate with its value (and the call
// is cancelled: nothing is stored).
func TestClientStreamIteratorPanicReachesTheCaller(t *testing.T) {
	c := dialGateway(t)
	row, _ := maas.NewMatrix([][]float64{{0.5, 0.5}})
	config := &generativev1.FitConfig{Name: "go-panicked-fit",
		Family: &generativev1.FitConfig_Uniform{Uniform: &generativev1.UniformFit{}}}
	p := recovered(func() {
		_, _ = c.Generative.FitModel(testContext(t), config, func(yield func(*commonv1.Matrix) bool) {
			yield(row)
			panic(errProducer)
		})
	})
	if p != errProducer {
		t.Fatalf("FitModel: recovered %v, want the producer's panic", p)
	}
	p = recovered(func() {
		_, _ = c.Discriminative.TrainBytes(testContext(t), &discriminativev1.TrainConfig{Name: "go-panicked-train"},
			func(yield func([]maas.LabeledBytes) bool) { panic(errProducer) })
	})
	if p != errProducer {
		t.Fatalf("TrainBytes: recovered %v, want the producer's panic", p)
	}
	_, err := c.Generative.GetModel(testContext(t), &generativev1.GetModelRequest{Model: maas.Ref("go-panicked-fit", 0)})
	wantCode(t, err, codes.NotFound)
	_, err = c.Discriminative.GetModel(testContext(t), &discriminativev1.GetModelRequest{Model: maas.Ref("go-panicked-train", 0)})
	wantCode(t, err, codes.NotFound)
}

// A panic of ClassifyStream's (or ClassifyStreamBytes') requests iterator, which runs on a goroutine of the
// client's, is raised again on the goroutine ranging over the responses, with its value, as FitModel's is; it
// used to end the process.
func TestBidiStreamIteratorPanicReachesTheCaller(t *testing.T) {
	d := dialGateway(t).Discriminative
	if _, err := d.Train(testContext(t), &discriminativev1.TrainConfig{Name: "go-bidi-panic"}, maas.Batches(corpus, 100)); err != nil {
		t.Fatal(err)
	}
	request := &discriminativev1.ClassifyRequest{Model: maas.Ref("go-bidi-panic", 0), Texts: []string{"a late goal"}}
	streams := map[string]iter.Seq2[*discriminativev1.ClassifyResponse, error]{
		"ClassifyStream": d.ClassifyStream(testContext(t), func(yield func(*discriminativev1.ClassifyRequest) bool) {
			yield(request)
			panic(errProducer)
		}),
		"ClassifyStreamBytes": d.ClassifyStreamBytes(testContext(t), func(yield func(*discriminativev1.ClassifyRequest, [][]byte) bool) {
			yield(request, [][]byte{[]byte("caf\xe9")})
			panic(errProducer)
		}),
	}
	for name, responses := range streams {
		var err error
		p := recovered(func() {
			for _, err = range responses {
				if err != nil {
					return
				}
			}
		})
		if p != errProducer {
			t.Errorf("%s: recovered %v (the loop's error: %v), want the producer's panic", name, p, err)
		}
	}
}

// Once the loop over ClassifyStream's (or ClassifyStreamBytes') responses has ended, which ends the call, the
// requests iterator's next yield returns false. It used to return true in 296 of 300 calls (grpc-go's Send kept
// taking messages for a while after the cancel), telling a producer its message was sent.
func TestBidiStreamYieldIsFalseOnceTheLoopEnded(t *testing.T) {
	d := dialGateway(t).Discriminative
	if _, err := d.Train(testContext(t), &discriminativev1.TrainConfig{Name: "go-bidi-after"}, maas.Batches(corpus, 100)); err != nil {
		t.Fatal(err)
	}
	request := &discriminativev1.ClassifyRequest{Model: maas.Ref("go-bidi-after", 0), Texts: []string{"a late goal"}}
	for i := 0; i < 20; i++ {
		release := make(chan struct{})
		after := make(chan bool, 1)
		responses := d.ClassifyStream(testContext(t), func(yield func(*discriminativev1.ClassifyRequest) bool) {
			if !yield(request) {
				after <- false
				return
			}
			<-release
			after <- yield(request)
		})
		for _, err := range responses {
			if err != nil {
				t.Fatal(err)
			}
			break
		}
		close(release)
		select {
		case sent := <-after:
			if sent {
				t.Fatalf("call %d: yield returned true after the loop over the responses had ended", i)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("call %d: the producer was not resumed", i)
		}
	}
}
