// Command ballast is the one Ballast binary: the server (storage, query API,
// ingest, rules, decision engine, applier, Watcher API), the node exporter,
// the offline planner and the tools around them, as subcommands.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/common/promslog"
	promslogflag "github.com/prometheus/common/promslog/flag"
	"github.com/prometheus/common/version"
)

// command is one subcommand: its kingpin clause and what runs when chosen.
type command struct {
	clause *kingpin.CmdClause
	run    func(ctx context.Context, logger *slog.Logger) error
}

// usageError is an error in the command line or configuration: it is printed
// without a stack of context and exits with status 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	version.Version = buildVersion
	app := kingpin.New("ballast", "Ballast watches KVM/libvirt and Ceph clouds and keeps them balanced.\n\n"+
		"Run 'ballast <command> --help' for the flags of one command.")
	app.Version(version.Print("ballast"))
	app.HelpFlag.Short('h')
	app.UsageWriter(os.Stdout)
	logCfg := &promslog.Config{}
	promslogflag.AddFlags(app, logCfg)

	// Every subcommand is wired here, one line each.
	cmds := []command{
		serverCommand(app),
		exporterCommand(app),
		planCommand(app),
		versionCommand(app),
	}
	cmds = append(cmds, checkCommands(app)...)

	// Without a command there is nothing to run: say so and show the
	// commands, on stderr, as a usage error. --help, --version and
	// kingpin's other terminating flags still work without one.
	if noCommand(app, args) {
		fmt.Fprint(os.Stderr, "ballast: no command given\n\n")
		app.UsageWriter(os.Stderr)
		app.Usage(nil)
		return 2
	}
	chosen, err := app.Parse(args)
	if err != nil {
		fmt.Fprintf(os.Stderr, "ballast: %v\n\nRun 'ballast --help' for usage.\n", err)
		return 2
	}
	logger := promslog.New(logCfg)

	ctx, stop := notifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	for _, c := range cmds {
		if c.clause.FullCommand() != chosen {
			continue
		}
		if err := c.run(ctx, logger); err != nil {
			var ue usageError
			if errors.As(err, &ue) {
				fmt.Fprintf(os.Stderr, "ballast %s: %v\n", chosen, ue.err)
				return 2
			}
			logger.Error("Command failed", "command", chosen, "err", err)
			return 1
		}
		return 0
	}
	fmt.Fprintf(os.Stderr, "ballast: unknown command %q\n", chosen)
	return 2
}

// noCommand reports whether args parse without naming a command (and
// without a flag that answers by itself, such as --help or --version).
func noCommand(app *kingpin.Application, args []string) bool {
	ctx, err := app.ParseContext(args)
	if err != nil || ctx.SelectedCommand != nil {
		return false // Parse reports the error or runs the command
	}
	for _, e := range ctx.Elements {
		if f, ok := e.Clause.(*kingpin.FlagClause); ok && (f == app.HelpFlag || f == app.VersionFlag || f.Model().Hidden) {
			return false
		}
	}
	return true
}

// notifyContext is signal.NotifyContext with a cause that names the signal
// (signalReceived), for the shutdown log. Later signals are diverted too
// until stop, so a second SIGTERM does not kill a process that is stopping.
func notifyContext(parent context.Context, sigs ...os.Signal) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancelCause(parent)
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, sigs...)
	go func() {
		select {
		case sig := <-ch:
			cancel(signalReceived{sig})
		case <-ctx.Done():
		}
	}()
	return ctx, func() {
		signal.Stop(ch)
		cancel(nil)
	}
}

// signalReceived is the cause of a context ended by a signal.
type signalReceived struct{ sig os.Signal }

func (e signalReceived) Error() string { return e.name() + " received" }

// Is makes it a context.Canceled, as signal.NotifyContext's cause is.
func (e signalReceived) Is(target error) bool { return target == context.Canceled }

// name is the signal's conventional name: SIGTERM, SIGINT.
func (e signalReceived) name() string {
	switch e.sig {
	case syscall.SIGTERM:
		return "SIGTERM"
	case os.Interrupt:
		return "SIGINT"
	}
	return e.sig.String()
}

// buildVersion is set at link time: -X main.buildVersion=...
var buildVersion = "0.1.0-dev"

func versionCommand(app *kingpin.Application) command {
	c := app.Command("version", "Print the version and build information.")
	return command{clause: c, run: func(context.Context, *slog.Logger) error {
		fmt.Println(version.Print("ballast"))
		return nil
	}}
}
