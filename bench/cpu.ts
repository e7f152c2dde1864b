/**
 * CPU time by process: where a 2-core machine's CPU went during a throughput round. The embedded servers run
 * in their own process groups (src/stack/processes.ts), so a group's CPU is the sum over /proc/<pid>/stat of
 * every live process whose pgrp is the leader's pid; this process (worker + clients) uses process.cpuUsage().
 * Linux only; elsewhere the figures are reported as unavailable.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

let ticksPerSecond: number | undefined;

function clockTicks(): number {
  if (ticksPerSecond === undefined) {
    try {
      ticksPerSecond = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      ticksPerSecond = 100;
    }
  }
  return ticksPerSecond;
}

interface ProcStat {
  pid: number;
  ppid: number;
  pgrp: number;
  /** utime + stime, in clock ticks. */
  own: number;
  /** cutime + cstime: what its reaped children spent. */
  children: number;
}

/** Every live process's /proc/<pid>/stat, or undefined where /proc is not readable. */
function procStats(): ProcStat[] | undefined {
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return undefined;
  }
  const out: ProcStat[] = [];
  for (const name of entries) {
    if (!/^\d+$/.test(name)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${name}/stat`, 'utf8');
    } catch {
      continue; // exited between readdir and read
    }
    // The command name (field 2) may contain spaces and parentheses: split after the last ')'. f[0] is field 3.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    out.push({ pid: Number(name), ppid: Number(f[1]), pgrp: Number(f[2]), own: Number(f[11]) + Number(f[12]), children: Number(f[13]) + Number(f[14]) });
  }
  return out;
}

/**
 * CPU (s) of the group: every live member's own time plus what its reaped children spent (children inherit the
 * group, so a worker that exited mid-round is still counted, once), or undefined where /proc is not readable.
 */
export function groupCpuSeconds(pgrp: number, stats: ProcStat[] | undefined = procStats()): number | undefined {
  if (!stats) return undefined;
  return stats.filter((p) => p.pgrp === pgrp).reduce((t, p) => t + p.own + p.children, 0) / clockTicks();
}

export interface CpuSnapshot {
  at: number;
  self: number;
  groups: Record<string, number | undefined>;
}

export function cpuSnapshot(groups: Record<string, number | undefined>): CpuSnapshot {
  const u = process.cpuUsage();
  const out: Record<string, number | undefined> = {};
  const stats = procStats(); // one /proc scan for every group
  for (const [name, pgrp] of Object.entries(groups)) out[name] = pgrp === undefined ? undefined : groupCpuSeconds(pgrp, stats);
  return { at: performance.now(), self: (u.user + u.system) / 1e6, groups: out };
}

export interface CpuUse {
  wallS: number;
  /** CPU seconds by part: "bench" (this process) and each group. */
  seconds: Record<string, number | undefined>;
  total: number;
}

export function cpuBetween(a: CpuSnapshot, b: CpuSnapshot): CpuUse {
  const seconds: Record<string, number | undefined> = { bench: b.self - a.self };
  for (const name of Object.keys(a.groups)) {
    const x = a.groups[name];
    const y = b.groups[name];
    seconds[name] = x === undefined || y === undefined ? undefined : y - x;
  }
  const total = Object.values(seconds).reduce<number>((s, v) => s + (v ?? 0), 0);
  return { wallS: (b.at - a.at) / 1000, seconds, total };
}

export function describeCpu(use: CpuUse, cores: number): string {
  const parts = Object.entries(use.seconds).map(([k, v]) => `${k} ${v === undefined ? '?' : v.toFixed(1)} s`);
  return `CPU ${use.total.toFixed(1)} s in ${use.wallS.toFixed(1)} s wall (${((use.total / (use.wallS * cores)) * 100).toFixed(0)}% of ${cores} cores): ${parts.join(', ')}`;
}

/**
 * Busy CPU seconds of the whole machine since boot as processes see it (/proc/stat user, nice, system). Interrupt
 * time is left out: the bench's own loopback traffic causes most of it, and no process's utime/stime includes it.
 */
export function machineBusySeconds(): number | undefined {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n')[0];
    const [, user, nice, system] = line.trim().split(/\s+/).map(Number);
    return ((user ?? 0) + (nice ?? 0) + (system ?? 0)) / clockTicks();
  } catch {
    return undefined;
  }
}

/**
 * CPU seconds of a process and every live descendant (servers, worker children), including what reaped
 * children spent (cutime/cstime), so the bench can tell its own load from other work on the machine.
 */
export function treeCpuSeconds(rootPid: number): number | undefined {
  const stats = procStats();
  if (!stats) return undefined;
  const parent = new Map(stats.map((p) => [p.pid, p.ppid]));
  let ticks = 0;
  for (const p of stats) {
    for (let q: number | undefined = p.pid; q !== undefined && q > 1; q = parent.get(q)) {
      if (q === rootPid) {
        ticks += p.own + p.children;
        break;
      }
    }
  }
  return ticks / clockTicks();
}

/** Machine CPU that did not go to this process tree, between two readings. */
export interface OtherLoad {
  busy?: number;
  ours?: number;
}

export function otherLoadReading(): OtherLoad {
  return { busy: machineBusySeconds(), ours: treeCpuSeconds(process.pid) };
}

/** Cores' worth of CPU other processes used between a and b (undefined where /proc is unavailable). */
export function otherCores(a: OtherLoad, b: OtherLoad, wallS: number): number | undefined {
  if (a.busy === undefined || b.busy === undefined || a.ours === undefined || b.ours === undefined || wallS <= 0) return undefined;
  return Math.max(0, b.busy - a.busy - (b.ours - a.ours)) / wallS;
}
