import type { Command } from "commander";
import { CanopyError, ErrorCode } from "@canopy/protocol";

const BASH = `# canopy completion for bash: source <(canopy completion bash)
_canopy() {
  local IFS=$'\\n'
  COMPREPLY=( $(compgen -W "$(canopy __complete "\${COMP_WORDS[@]:1:COMP_CWORD-1}" 2>/dev/null)" -- "\${COMP_WORDS[COMP_CWORD]}") )
}
complete -o default -F _canopy canopy
`;

const ZSH = `#compdef canopy
# canopy completion for zsh: source <(canopy completion zsh)
_canopy() {
  local -a candidates
  candidates=("\${(@f)$(canopy __complete \${words[2,CURRENT-1]} 2>/dev/null)}")
  compadd -a candidates
}
compdef _canopy canopy
`;

/** `canopy completion bash|zsh` prints a script; the script asks `canopy __complete` for candidates. */
export function registerCompletion(program: Command): void {
  program
    .command("completion <shell>")
    .description("print a shell completion script (bash or zsh)")
    .addHelpText("after", "\nExamples:\n  source <(canopy completion bash)             # in ~/.bashrc\n  canopy completion zsh > \"${fpath[1]}/_canopy\"")
    .action((shell: string) => {
      if (shell === "bash") process.stdout.write(BASH);
      else if (shell === "zsh") process.stdout.write(ZSH);
      else throw new CanopyError(ErrorCode.InvalidInput, `unknown shell ${JSON.stringify(shell)}: use bash or zsh`);
    });
  program
    .command("__complete", { hidden: true })
    .argument("[words...]")
    .allowUnknownOption()
    .helpOption(false)
    .action((words: string[]) => {
      process.stdout.write(candidates(program, words ?? []).join("\n") + "\n");
    });
}

/** Subcommands and options of the deepest command the words name. */
export function candidates(program: Command, words: readonly string[]): string[] {
  let cmd = program;
  for (const w of words) {
    const next = cmd.commands.find((c) => c.name() === w || c.aliases().includes(w));
    if (next) cmd = next;
  }
  const subs = cmd.commands.filter((c) => !c.name().startsWith("__")).map((c) => c.name());
  const flags = [...cmd.options, ...(cmd === program ? [] : program.options)].map((o) => o.long).filter((f): f is string => f !== undefined);
  return [...subs, ...flags, "--help"];
}
