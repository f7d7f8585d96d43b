package client_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/aof2/aof2/client"
)

func ExampleClient() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, hostAddr) // e.g. "127.0.0.1:7400": plaintext on loopback
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	ids, err := c.Append(ctx, 1, []byte("hello"), []byte("world")) // durable once it returns
	if err != nil {
		log.Fatal(err)
	}
	res, err := c.Read(ctx, 1, client.AtID(ids[0]), 10)
	if err != nil {
		log.Fatal(err)
	}
	for _, r := range res.Records {
		fmt.Printf("%d %s\n", r.Ordinal, r.Payload)
	}
	// Output:
	// 0 hello
	// 1 world
}
