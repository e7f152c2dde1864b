/**
 * Real headless Chromium for the page's browser tests: Debian's system `chromium` driven by playwright-core (no
 * browser download, ever). When either is missing the tests are skipped with the reason printed, never failed
 * silently; scripts/test.sh installs Debian's chromium when it can (root + apt).
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const CHROMIUM = process.env.MODELGATE_TEST_CHROMIUM ?? '/usr/bin/chromium';

export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** The slice of playwright-core's API the tests use (the package's own types are not needed to compile). */
export interface Locator {
  textContent(): Promise<string | null>;
  count(): Promise<number>;
}
export interface Page {
  goto(url: string): Promise<unknown>;
  fill(selector: string, value: string): Promise<void>;
  click(selector: string): Promise<void>;
  locator(selector: string): Locator;
  waitForSelector(selector: string, opts?: { timeout?: number }): Promise<unknown>;
  waitForURL(url: RegExp | string | ((url: URL) => boolean), opts?: { timeout?: number }): Promise<void>;
  evaluate<T>(fn: string): Promise<T>;
  screenshot(opts: { path: string; fullPage?: boolean }): Promise<unknown>;
  setViewportSize(size: { width: number; height: number }): Promise<void>;
  keyboard: { press(key: string): Promise<void>; type(text: string): Promise<void> };
  url(): string;
  content(): Promise<string>;
}
export interface BrowserContext {
  newPage(): Promise<Page>;
  clearCookies(): Promise<void>;
  cookies(url?: string): Promise<{ name: string; httpOnly: boolean; sameSite: 'Strict' | 'Lax' | 'None'; secure: boolean; path: string }[]>;
  close(): Promise<void>;
}
interface Playwright {
  chromium: {
    launchPersistentContext(dir: string, opts: { executablePath: string; headless: boolean; args: string[]; viewport?: { width: number; height: number } }): Promise<BrowserContext>;
  };
}

/** Why the browser tests cannot run here, or undefined when they can. */
export async function browserUnavailable(): Promise<string | undefined> {
  if (!existsSync(CHROMIUM)) return `${CHROMIUM} is missing (install Debian's chromium: apt-get install -y chromium; scripts/test.sh does it as root)`;
  try {
    await loadPlaywright();
  } catch (err) {
    return `playwright-core cannot be loaded (${(err as Error).message.split('\n')[0]}); run npm ci`;
  }
  return undefined;
}

async function loadPlaywright(): Promise<Playwright> {
  // A variable specifier: compiling does not need the package's types.
  const name = 'playwright-core';
  return (await import(name)) as Playwright;
}

export interface RunningBrowser {
  context: BrowserContext;
  close(): Promise<void>;
}

/** A fresh profile in a temporary user-data dir (no state between runs). */
export async function launchChromium(): Promise<RunningBrowser> {
  const pw = await loadPlaywright();
  const dir = mkdtempSync(join(tmpdir(), 'modelgate-chromium-'));
  const context = await pw.chromium.launchPersistentContext(dir, {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_ARGS,
    viewport: { width: 1280, height: 900 },
  });
  return {
    context,
    async close() {
      await context.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
