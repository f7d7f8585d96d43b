// Package api holds the client API's contract documents: the aof2.v1
// protobuf definitions (proto/), the conventions both ends share (wire/)
// and the HTTP side's OpenAPI 3 document, which the host serves at
// /openapi.json and the tests hold to the routes the server registers.
package api

import _ "embed"

// OpenAPI is openapi.json: the HTTP routes, their parameters, bodies and
// answers.
//
//go:embed openapi.json
var OpenAPI []byte
