import { useEffect, useRef, useState } from 'preact/hooks';
import { grabJpeg, isCameraProblem, openCamera } from './camera.ts';

/** A live webcam preview; onReady hands the parent a function that grabs one JPEG. */
export function Webcam({ onReady }: { onReady: (grab: () => Promise<Blob | null>) => void }) {
  const video = useRef<HTMLVideoElement>(null);
  const canvas = useRef<HTMLCanvasElement>(null);
  const [problem, setProblem] = useState<string | null>(null);
  useEffect(() => {
    let media: MediaStream | null = null;
    let stopped = false;
    openCamera({ width: { ideal: 1280 }, height: { ideal: 720 } })
      .then((stream) => {
        if (stopped) return stream.getTracks().forEach((t) => t.stop());
        media = stream;
        video.current!.srcObject = stream;
        void video.current!.play().catch(() => {});
        onReady(() => grabJpeg(video.current!, canvas.current!, 1280, 0.9));
      })
      .catch((err: unknown) => setProblem(isCameraProblem(err) ? err.message : String(err)));
    return () => {
      stopped = true;
      media?.getTracks().forEach((t) => t.stop());
    };
  }, []);
  if (problem)
    return (
      <p class="error" role="alert">
        {problem}
      </p>
    );
  return (
    <div class="webcam">
      <video ref={video} muted playsInline autoPlay class="mirror" aria-label="Webcam preview" />
      <canvas ref={canvas} style={{ display: 'none' }} />
    </div>
  );
}
