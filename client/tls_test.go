package client_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/aof2/aof2/client"
	"github.com/aof2/aof2/host/server"
	"github.com/aof2/aof2/host/server/servertest"
	"github.com/aof2/aof2/internal/testcert"
)

func TestTLSWithToken(t *testing.T) {
	cert, pool := testcert.New(t)
	h := servertest.Start(t, rollingConfig(), server.Options{
		Token: "s3cret", TLS: &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
	})
	ctx := ctxT(t)
	c, err := client.Dial(ctx, h.GRPCAddr, client.WithTLS(&tls.Config{RootCAs: pool}), client.WithToken("s3cret"))
	require.NoError(t, err)
	defer c.Close()
	ids, err := c.Append(ctx, 1, []byte("over tls"))
	require.NoError(t, err)
	require.Len(t, ids, 1)

	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	defer hc.CloseIdleConnections()
	req, err := http.NewRequest("POST", h.HTTPURL+"/v1/streams/1/records", bytes.NewReader([]byte("https")))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer s3cret")
	resp, err := hc.Do(req)
	require.NoError(t, err)
	_ = resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)

	// A plaintext client never gets a connection up.
	dctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	_, err = client.Dial(dctx, h.GRPCAddr, client.WithInsecure())
	require.ErrorIs(t, err, context.DeadlineExceeded)
}
