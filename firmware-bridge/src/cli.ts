export async function main(argv: string[]): Promise<number> {
  process.stderr.write(`canopy ${argv.join(" ")}: not built yet\n`);
  return 1;
}
