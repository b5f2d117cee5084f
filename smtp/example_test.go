package smtp_test

import (
	"fmt"

	"github.com/popgate/popgate/smtp"
)

func ExampleParseAddress() {
	for _, in := range []string{
		"Alice@Bücher.Example.",
		"<@relay.example:bob@example.com>",
		"user%elsewhere.example@example.com",
		"root@[192.0.2.1]",
	} {
		a, err := smtp.ParseAddress(in)
		if err != nil {
			fmt.Println("refused:", err)
			continue
		}
		fmt.Println(a, a.Literal)
	}
	// Output:
	// Alice@xn--bcher-kva.example false
	// bob@example.com false
	// refused: routing syntax in local part in "user%elsewhere.example@example.com"
	// root@[192.0.2.1] true
}
