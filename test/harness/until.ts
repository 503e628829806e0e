// Waits for a condition the test is driving towards, polling; fails saying what never happened. A bound on
// waiting, not a timing assertion: a slow machine only makes the test take longer.
export async function until(cond: () => boolean | Promise<boolean>, what: string, ms = 15_000): Promise<void> {
  for (let waited = 0; !(await cond()); waited += 5) {
    if (waited > ms) throw new Error(`never happened: ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}
