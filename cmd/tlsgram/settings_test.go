package main

import (
	"fmt"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tlsgram/tlsgram/transport"
)

// TestEverySettingCanBeAFlag: every row of the library's settings table that names a flag is
// of a type the command can parse, and every row of such a type, given a flag, is registered
// with the row's default.
func TestEverySettingCanBeAFlag(t *testing.T) {
	typ := reflect.TypeFor[transport.Config]()
	var rows []transport.Setting
	for _, s := range transport.Settings() {
		f, ok := typ.FieldByName(s.Field)
		require.True(t, ok, s.Field)
		if !canFlag(f.Type) {
			require.Empty(t, s.Flag, "transport.Settings gives Config.%s the flag -%s, but the command cannot parse a %s: extend sessionFlags.register",
				s.Field, s.Flag, f.Type)
			continue
		}
		s.Flag = strings.ToLower(s.Field)
		rows = append(rows, s)
	}
	var o sessionFlags
	f := newFlags(&env{}, "test", "", "", true)
	o.registerRows(f, rows, nil)
	for _, s := range rows {
		fl := f.Lookup(s.Flag)
		require.NotNil(t, fl, s.Field)
		if s.Default != nil {
			require.Equal(t, fmt.Sprint(s.Default), fl.DefValue, s.Field)
		}
	}
}

// TestCongestionFlag is the -cc bug: "-cc newreno" must select NewReno (it used to leave the
// default, CUBIC, in place), and the default must be the library's.
func TestCongestionFlag(t *testing.T) {
	for _, name := range transport.CongestionNames() {
		var o sessionFlags
		f := newFlags(&env{}, "test", "", "", true)
		o.register(f)
		_, err := f.parse([]string{"-cc", name})
		require.NoError(t, err)
		require.Equal(t, name, o.config().Congestion.String())
	}
	var o sessionFlags
	f := newFlags(&env{}, "test", "", "", true)
	o.register(f)
	_, err := f.parse(nil)
	require.NoError(t, err)
	for _, s := range transport.Settings() {
		if s.Field == "Congestion" {
			require.Equal(t, s.Default, o.config().Congestion)
		}
	}
	require.Equal(t, transport.BBR, o.config().Congestion)
}

// TestHelpShowsLibrarySettings: the help of every command that runs sessions documents each
// flagged setting with the library's meaning and default.
func TestHelpShowsLibrarySettings(t *testing.T) {
	t.Parallel()
	for _, cmd := range []string{"serve", "connect", "demo"} {
		stdout, stderr, code := runTool(t, 10*time.Second, nil, cmd, "-h")
		require.Equal(t, 0, code, stderr)
		for _, s := range transport.Settings() {
			if s.Flag == "" || cmd == "connect" && s.Flag == "handshake-timeout" {
				continue
			}
			re := `(?m)^  -` + regexp.QuoteMeta(s.Flag) + `\b.*\n\s+.*` + regexp.QuoteMeta(s.Meaning[:20]) +
				`.*\(default ` + regexp.QuoteMeta(fmt.Sprint(s.Default)) + `\)$`
			require.Regexp(t, re, stdout, "%s -h does not document -%s as transport.Settings has it", cmd, s.Flag)
		}
	}
}
