import type { Guidance } from './pages/kiosk.tsx';

/*
 * A Face ID-like ring around the face: one arc per pose, filled when captured, highlighted while
 * being captured, and an arrow from the live pose error showing which way to turn.
 */

const SIZE = 220;
const R = 96;
const GAP_DEG = 6;

function arc(startDeg: number, endDeg: number): string {
  const p = (deg: number): string => {
    const rad = ((deg - 90) * Math.PI) / 180;
    return `${SIZE / 2 + R * Math.cos(rad)} ${SIZE / 2 + R * Math.sin(rad)}`;
  };
  return `M ${p(startDeg)} A ${R} ${R} 0 ${endDeg - startDeg > 180 ? 1 : 0} 1 ${p(endDeg)}`;
}

export function PoseRing({ guidance, style }: { guidance: Guidance; style?: Record<string, string> }) {
  const angles = guidance.angles.length > 0 ? guidance.angles : ['front', 'left', 'right', 'up', 'down'];
  const step = 360 / angles.length;
  // pose_error = current − target; on the mirrored screen the subject's own right is the
  // screen's right and up is up, so the way to move is (+yaw error → right, +pitch error → down).
  const e = guidance.error;
  const magnitude = e ? Math.hypot(e.yaw, e.pitch) : 0;
  const showArrow = e !== null && magnitude > 4;
  const rotation = e ? (Math.atan2(e.pitch, e.yaw) * 180) / Math.PI : 0;
  const length = Math.min(70, 24 + magnitude * 1.5);
  return (
    <svg class="pose-ring" style={style} viewBox={`0 0 ${SIZE} ${SIZE}`} role="img" aria-label={`${guidance.done.length} of ${angles.length} poses captured`}>
      {angles.map((name, i) => {
        const state = guidance.done.includes(name) ? 'done' : name === guidance.current ? 'current' : 'pending';
        return <path key={`${name}-${i}`} d={arc(i * step + GAP_DEG / 2, (i + 1) * step - GAP_DEG / 2)} class={`ring-seg ${state}`} />;
      })}
      {showArrow && (
        <g transform={`translate(${SIZE / 2} ${SIZE / 2}) rotate(${rotation})`} class="ring-arrow">
          <line x1={0} y1={0} x2={length} y2={0} />
          <path d={`M ${length + 12} 0 L ${length - 4} -10 L ${length - 4} 10 Z`} />
        </g>
      )}
    </svg>
  );
}
