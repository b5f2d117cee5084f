// Package acl decides who may relay: sendmail access rules, POP-before-SMTP grants and their access.db mirrors.
package acl
