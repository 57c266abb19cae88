package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/paybridge/paybridge/client"
)

// exampleServer starts a paybridge with stub VCC and PCI Pal on 127.0.0.1, for the example.
func exampleServer() (baseURL, secretKey string, stop func()) {
	w, err := startWorld(worldConfig{})
	if err != nil {
		panic(err)
	}
	return w.srv.URL, w.secretKey, w.Close
}

// A merchant's backend takes a payment on an agent's call: it mints the agent's token for the
// widget, creates the session (the payment form is on the agent's screen when Create returns),
// reads it back, lists the agent's sessions and handles an error.
func Example() {
	baseURL, secretKey, stop := exampleServer() // yours: https://pay.acme.example and os.Getenv("PAYBRIDGE_SECRET_KEY")
	defer stop()

	pb := client.New(baseURL, secretKey)
	ctx := context.Background()

	// The widget in the agent's browser asks your backend for an agent token.
	tok, err := pb.AgentTokens.Create(ctx, &client.AgentTokenCreateParams{AgentID: "agent-42"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("token for", tok.AgentID) // send tok.Token to agent-42's browser, and nowhere else

	// Take £12.40 on agent-42's call. Your own Idempotency-Key makes a retry of this payment,
	// even from another process, answer this session instead of starting a second one.
	sess, err := pb.Sessions.Create(ctx, &client.SessionCreateParams{
		AgentID: "agent-42", Amount: 1240, Currency: "GBP", Reference: "INV-1001",
	}, client.IdempotencyKey("INV-1001-payment"))
	var apiErr *client.Error
	if errors.As(err, &apiErr) {
		log.Fatalf("%s: %s; fix: %s (request %s)", apiErr.Code, apiErr.Message, apiErr.Fix, apiErr.RequestID)
	} else if err != nil {
		log.Fatal(err)
	}
	fmt.Println(sess.Status, sess.Amount, sess.Currency, sess.Reference)

	// The outcome arrives by signed webhook (verify it with webhook.Verify); or read it.
	sess, err = pb.Sessions.Get(ctx, sess.ID)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("attempt", sess.Attempt, "result", sess.Result)

	// Every session of the agent, page after page.
	for s, err := range pb.Sessions.List(ctx, &client.SessionListParams{AgentID: "agent-42"}) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println("listed", s.Reference, s.Status)
	}

	// Errors carry a code to branch on and the field at fault.
	_, err = pb.Sessions.Create(ctx, &client.SessionCreateParams{AgentID: "agent-42", Amount: 1240, Currency: "GBPX"})
	if errors.As(err, &apiErr) && apiErr.Code == client.CodeValidationError {
		fmt.Println(apiErr.HTTPStatus, apiErr.Code, apiErr.Param)
	}
	// Output:
	// token for agent-42
	// active 1240 GBP INV-1001
	// attempt 1 result <nil>
	// listed INV-1001 active
	// 400 validation_error currency
}

// TestREADMEExample: the README's integrator example is Example, line for line, from the
// client.New call on, so that the README shows code that runs.
func TestREADMEExample(t *testing.T) {
	src, err := os.ReadFile("example_test.go")
	require.NoError(t, err)
	readme, err := os.ReadFile("../README.md")
	require.NoError(t, err)

	from := func(text, start, end string) []string {
		t.Helper()
		i := strings.Index(text, start)
		require.GreaterOrEqual(t, i, 0, "no %q", start)
		text = text[i:]
		j := strings.Index(text, end)
		require.GreaterOrEqual(t, j, 0, "no %q after %q", end, start)
		return strings.Split(text[:j], "\n")
	}
	example := from(string(src), "\tpb := client.New(baseURL, secretKey)\n", "\t// Output:")
	section := string(readme)[strings.Index(string(readme), "### Calling paybridge from Go"):]
	block := from(section, "pb := client.New(\"https://pay.acme.example\", os.Getenv(\"PAYBRIDGE_SECRET_KEY\"))\n", "```")

	require.Equal(t, len(example), len(block), "README:\n%s", strings.Join(block, "\n"))
	for i := 1; i < len(example); i++ { // the client.New lines differ in their arguments only
		assert.Equal(t, strings.TrimPrefix(example[i], "\t"), block[i], "line %d", i+1)
	}
}
