// Package smtp implements popgate's SMTP server: inbound MX and submission, local delivery and relay decisions.
package smtp
