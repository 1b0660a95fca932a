// @vitest-environment jsdom
import { cleanup, fireEvent, render, screen } from '@testing-library/react';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { RoomPanel } from './RoomPanel';

afterEach(cleanup);

describe('RoomPanel', () => {
  it('shows the room code, a shareable link and a QR code of that link', async () => {
    render(<RoomPanel room="class-7" onCreate={() => {}} onJoin={() => {}} />);
    expect(screen.getByTestId('room-code').textContent).toBe('class-7');
    const link = screen.getByRole('link');
    expect(link.getAttribute('href')).toBe('http://localhost:3000/?room=class-7');
    const qr = (await screen.findByAltText(/QR code of the room link/)) as HTMLImageElement;
    const svg = decodeURIComponent(qr.src.replace('data:image/svg+xml;charset=utf-8,', ''));
    expect(svg.startsWith('<svg')).toBe(true);
    expect(svg).toContain('<path');
  });

  it('says when the link would not reach other machines, and lets joining tabs start at once', () => {
    const linkFor = vi.fn((code: string, start: boolean) => `https://10.0.0.5:5443/?room=${code}&signal=wss%3A%2F%2F10.0.0.5%3A5443%2Fsignal${start ? '&autostart=1' : ''}`);
    render(<RoomPanel room="class-7" onCreate={() => {}} onJoin={() => {}} linkFor={linkFor} />);
    expect(screen.getByTestId('room-link').getAttribute('href')).not.toContain('autostart');
    expect(screen.queryByTestId('room-reach')).toBeNull();
    fireEvent.click(screen.getByLabelText(/start training at once/));
    expect(screen.getByTestId('room-link').getAttribute('href')).toContain('&autostart=1');
    cleanup();
    // the default link (this page, no signalling server) reaches this machine's browser only
    render(<RoomPanel room="class-7" onCreate={() => {}} onJoin={() => {}} />);
    expect(screen.getByTestId('room-reach').textContent).toMatch(/only this machine can open it/);
  });

  it('creates a room, and joins one by code after checking the code', () => {
    const onCreate = vi.fn();
    const onJoin = vi.fn();
    render(<RoomPanel room={null} onCreate={onCreate} onJoin={onJoin} />);
    fireEvent.click(screen.getByRole('button', { name: 'Create room' }));
    expect(onCreate).toHaveBeenCalledTimes(1);

    const input = screen.getByLabelText('Room code');
    fireEvent.change(input, { target: { value: '../etc' } });
    fireEvent.click(screen.getByRole('button', { name: 'Join' }));
    expect(onJoin).not.toHaveBeenCalled();
    expect(screen.getByRole('alert').textContent).toMatch(/room must be/);

    fireEvent.change(input, { target: { value: ' abc123 ' } });
    fireEvent.submit(input.closest('form')!);
    expect(onJoin).toHaveBeenCalledWith('abc123');
    expect(screen.queryByRole('alert')).toBeNull();
  });
});
