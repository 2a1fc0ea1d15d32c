import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';

export interface DaySeries {
  days: string[];
  present: number[];
  late: number[];
  absent: (number | null)[];
}

/** Present / late / absent per day as bars (uPlot), resizing with its box. */
export function DayChart({ series }: { series: DaySeries }) {
  const box = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const el = box.current;
    if (!el || series.days.length === 0) return;
    const xs = series.days.map((_, i) => i);
    // Present and absent side by side (left and right of the day), late as a line over them.
    const bars = (align: -1 | 1) => uPlot.paths.bars!({ size: [0.38, 48], align });
    const styles = getComputedStyle(document.documentElement);
    const color = (name: string, fallback: string): string => styles.getPropertyValue(name).trim() || fallback;
    const opts: uPlot.Options = {
      width: el.clientWidth,
      height: 240,
      legend: { show: true },
      scales: { x: { time: false, range: [-0.6, xs.length - 0.4] }, y: { range: (_u, _min, max) => [0, Math.max(1, max)] } },
      axes: [
        { stroke: color('--fg', '#222'), grid: { show: false }, values: (_u, ticks) => ticks.map((t) => (Number.isInteger(t) ? (series.days[t]?.slice(5) ?? '') : '')), splits: () => xs },
        // Counts of people: whole numbers only.
        { stroke: color('--fg', '#222'), grid: { stroke: color('--grid', '#ddd') }, incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000] },
      ],
      series: [
        {},
        { label: 'Present', fill: color('--ok', '#1a7f37'), stroke: color('--ok', '#1a7f37'), paths: bars(-1), points: { show: false } },
        { label: 'Late', stroke: color('--warn', '#b35900'), width: 2, points: { show: true, size: 7 } },
        { label: 'Absent', fill: color('--bad', '#c62828'), stroke: color('--bad', '#c62828'), paths: bars(1), points: { show: false } },
      ],
    };
    const data: uPlot.AlignedData = [xs, series.present, series.late, series.absent.map((v) => v ?? null)];
    const plot = new uPlot(opts, data, el);
    const resize = new ResizeObserver(() => plot.setSize({ width: el.clientWidth, height: 240 }));
    resize.observe(el);
    return () => {
      resize.disconnect();
      plot.destroy();
    };
  }, [series]);
  return <div ref={box} class="chart" role="img" aria-label="Attendance per day: present, late and absent" />;
}
