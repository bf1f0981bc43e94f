// Quickstart: one model of each kind through the gateway at $MAAS_TARGET (default 127.0.0.1:50051).
package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"time"

	discriminativev1 "github.com/maas-project/maas/clients/go/gen/maas/discriminative/v1"
	generativev1 "github.com/maas-project/maas/clients/go/gen/maas/generative/v1"
	"github.com/maas-project/maas/clients/go/maas"
)

func main() {
	client, err := maas.Dial(cmp.Or(os.Getenv("MAAS_TARGET"), "127.0.0.1:50051"))
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// A uniform box [0,1] x [-1,1]: store it, stream 3 samples (seeded), estimate log p(x) exactly.
	box := &generativev1.GenerativeModelSpec{Family: &generativev1.GenerativeModelSpec_Uniform{
		Uniform: &generativev1.UniformSpec{Low: []float64{0, -1}, High: []float64{1, 1}}}}
	if _, err := client.Generative.CreateModel(ctx, &generativev1.CreateModelRequest{Name: "go-box", Spec: box}); err != nil {
		log.Fatal(err)
	}
	seed := uint64(7)
	for batch, err := range client.Generative.Sample(ctx, &generativev1.SampleRequest{
		Model: maas.Ref("go-box", 0), NumSamples: 3, Seed: &seed}) {
		if err != nil {
			log.Fatal(err)
		}
		rows, _ := maas.Rows(batch.GetX())
		for _, row := range rows {
			fmt.Println("sample", row)
		}
	}
	x, _ := maas.NewMatrix([][]float64{{0.5, 0}, {2, 0}})
	est, err := client.Generative.EstimateLogLikelihood(ctx, &generativev1.EstimateLogLikelihoodRequest{
		Model: maas.Ref("go-box", 0), X: x, Estimator: generativev1.Estimator_EXACT})
	if err != nil {
		log.Fatal(err)
	}
	for _, row := range est.GetRows() {
		fmt.Printf("log p(x) %.6f\n", row.GetLogLikelihood())
	}

	// A text classifier (CountVectorizer + MultinomialNB) trained from streamed batches.
	examples := []*discriminativev1.LabeledText{
		{Text: "the striker scored a late goal", Label: "sports"},
		{Text: "the keeper saved a penalty", Label: "sports"},
		{Text: "a faster chip and more memory", Label: "tech"},
		{Text: "the update fixes a kernel bug", Label: "tech"},
	}
	if _, err := client.Discriminative.Train(ctx, &discriminativev1.TrainConfig{Name: "go-text"},
		maas.Batches(examples, 2)); err != nil {
		log.Fatal(err)
	}
	resp, err := client.Discriminative.Classify(ctx, &discriminativev1.ClassifyRequest{
		Model: maas.Ref("go-text", 0), Texts: []string{"a goal in the last minute"}, TopK: 1})
	if err != nil {
		log.Fatal(err)
	}
	top := resp.GetResults()[0].GetScores()[0]
	fmt.Printf("label %s p=%.4f\n", top.GetLabel(), top.GetProbability())

	// Failures are *maas.Error values carrying the gRPC status code and the server's message.
	_, err = client.Generative.GetModel(ctx, &generativev1.GetModelRequest{Model: maas.Ref("no-such-model", 0)})
	var e *maas.Error
	if errors.As(err, &e) {
		fmt.Println("error", e.Code)
	}
}
