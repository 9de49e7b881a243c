package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/alecthomas/kingpin/v2"

	"github.com/ballast-cloud/ballast/deploy"
	"github.com/ballast-cloud/ballast/rules"
)

// checkCommands are `ballast check config` and `ballast check rules`, as
// promtool's: validate without running anything.
func checkCommands(app *kingpin.Application) []command {
	c := app.Command("check", "Check a configuration or rule files without running anything (a problem exits 2, naming the file, line and field).")

	cfgCmd := c.Command("config", "Check the server configuration: every section, the rule files it names (and the "+
		"built-in ones), receivers (secret files are read) and triggers.")
	var cfgFile string
	cfgCmd.Flag("config.file", "Ballast configuration file (YAML). Empty: the embedded default.").StringVar(&cfgFile)

	rulesCmd := c.Command("rules", "Check Prometheus-format rule files as the server loads them.")
	var files []string
	rulesCmd.Arg("file", "Rule files.").Required().ExistingFilesVar(&files)

	return []command{
		{clause: cfgCmd, run: func(_ context.Context, logger *slog.Logger) error {
			cfg, err := loadConfig(cfgFile, "localhost:9322", logger)
			if err == nil {
				err = cfg.validate()
			}
			if err != nil {
				return usageError{err}
			}
			sum, err := rules.Check(cfg.prom, cfg.Rules, deploy.Rules)
			if err != nil {
				return usageError{err}
			}
			name := cfgFile
			if name == "" {
				name = "embedded default"
			}
			fmt.Fprintf(os.Stdout, "SUCCESS: %s is valid: %d rule files (%d groups, %d rules, %d alerts), %d receivers, %d triggers\n",
				name, sum.Files, sum.Groups, sum.Rules, sum.Alerts, sum.Receivers, sum.Triggers)
			return nil
		}},
		{clause: rulesCmd, run: func(_ context.Context, _ *slog.Logger) error {
			sum, err := rules.CheckRuleFiles(files, nil)
			if err != nil {
				return usageError{err}
			}
			fmt.Fprintf(os.Stdout, "SUCCESS: %d rule files, %d groups, %d rules (%d alerts)\n", sum.Files, sum.Groups, sum.Rules, sum.Alerts)
			return nil
		}},
	}
}
