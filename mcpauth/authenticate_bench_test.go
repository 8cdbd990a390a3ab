package mcpauth

import (
	"context"
	"testing"
)

// BenchmarkAuthenticate is what authentication costs a request, by kind of
// credential (a JWT seen before comes from the cache of verified tokens),
// and a JWT's first use: `go test -run '^$' -bench Authenticate ./mcpauth/`.
func BenchmarkAuthenticate(b *testing.B) {
	is := standardIssuer(b)
	key, err := NewKey()
	if err != nil {
		b.Fatal(err)
	}
	c := jwtConfig(is)
	c.APIKeys = []APIKey{{Principal: "ci", Hash: HashKey(key)}}
	provision(b, c)
	k := testKeys()
	cases := map[string]string{
		"api_key":   key,
		"jwt_rs256": sign(b, k["rsa"], claims()),
		"jwt_es256": sign(b, k["ec"], claims()),
		"jwt_eddsa": sign(b, k["ed"], claims()),
	}
	for _, name := range []string{"api_key", "jwt_rs256", "jwt_es256", "jwt_eddsa"} {
		b.Run(name, func(b *testing.B) {
			r := request("Authorization", "Bearer "+cases[name])
			if _, err := c.Authenticate(r, testResource); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.Authenticate(r, testResource); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	// A token's first use: the signature and claims checked, no cache.
	for _, name := range []string{"jwt_rs256", "jwt_es256", "jwt_eddsa"} {
		b.Run(name+"_first_use", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.jwt.check(context.Background(), cases[name], testResource); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
