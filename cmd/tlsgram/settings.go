package main

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/tlsgram/tlsgram/transport"
)

// sessionFlags are the transport settings the command line sets: every row of the library's
// settings table (transport.Settings) that names a flag becomes one, with the library's default
// and meaning, writing straight into conf. The command therefore cannot offer a setting, a
// default or a controller the library does not have.
type sessionFlags struct {
	conf transport.Config
}

// register adds the settings' flags to f, except those in skip (a subcommand with a flag of
// its own for the same thing).
func (o *sessionFlags) register(f *cmdFlags, skip ...string) {
	o.registerRows(f, transport.Settings(), skip)
}

func (o *sessionFlags) registerRows(f *cmdFlags, rows []transport.Setting, skip []string) {
	v := reflect.ValueOf(&o.conf).Elem()
	for _, s := range rows {
		if s.Flag == "" || slices.Contains(skip, s.Flag) {
			continue
		}
		field := v.FieldByName(s.Field)
		if s.Default != nil {
			field.Set(reflect.ValueOf(s.Default))
		}
		usage := s.Meaning
		switch p := field.Addr().Interface().(type) {
		case *time.Duration:
			f.DurationVar(p, s.Flag, *p, strings.Replace(usage, "this long", "this `duration`", 1))
		case *int:
			f.IntVar(p, s.Flag, *p, usage)
		case *uint64:
			f.Uint64Var(p, s.Flag, *p, usage)
		case *bool:
			f.BoolVar(p, s.Flag, *p, usage)
		case *transport.Congestion:
			f.TextVar(p, s.Flag, *p, "`name` of the "+usage)
		default:
			// TestEverySettingCanBeAFlag fails first, so this cannot reach a user.
			panic(fmt.Sprintf("tlsgram: no flag type for transport.Config.%s (%T)", s.Field, p))
		}
	}
}

// canFlag reports whether register can make a flag of a Config field of type t.
func canFlag(t reflect.Type) bool {
	switch reflect.New(t).Interface().(type) {
	case *time.Duration, *int, *uint64, *bool, *transport.Congestion:
		return true
	}
	return false
}

// config returns the settings for Listen or Dial.
func (o *sessionFlags) config() *transport.Config {
	c := o.conf
	return &c
}

// values maps each flagged setting's flag to its value.
func (o *sessionFlags) values() map[string]string {
	v := reflect.ValueOf(o.conf)
	m := map[string]string{}
	for _, s := range transport.Settings() {
		if s.Flag != "" {
			m[s.Flag] = fmt.Sprint(v.FieldByName(s.Field).Interface())
		}
	}
	return m
}

// describe lists the flagged settings as "-flag value", marking those that differ from the
// library's default: what the demo shows.
func (o *sessionFlags) describe() string {
	v := reflect.ValueOf(o.conf)
	var parts []string
	for _, s := range transport.Settings() {
		if s.Flag == "" {
			continue
		}
		val := v.FieldByName(s.Field).Interface()
		text := fmt.Sprint(val)
		if !reflect.DeepEqual(val, s.Default) {
			text += " (changed)"
		}
		parts = append(parts, "-"+s.Flag+" "+text)
	}
	return strings.Join(parts, ", ")
}
