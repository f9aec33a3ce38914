// Undo and redo for region edits: a list of steps, each knowing how to take itself back and do itself again.
// A step is either a change of the region list (before/after arrays; regions are never changed in place) or a
// patch of one mask's pixels (the tiles before and after). New edits drop whatever had been undone.
const LIMIT = 200;

export class History {
  constructor(onMove = () => {}) {
    this.done = [];
    this.undone = [];
    this.onMove = onMove;  // after undo/redo/push/clear: lets buttons enable and disable
  }

  push(step) {
    this.done.push(step);
    if (this.done.length > LIMIT) this.done.shift();
    this.undone = [];
    this.onMove();
  }

  undo() {
    const step = this.done.pop();
    if (!step) return false;
    step.undo();
    this.undone.push(step);
    this.onMove();
    return true;
  }

  redo() {
    const step = this.undone.pop();
    if (!step) return false;
    step.redo();
    this.done.push(step);
    this.onMove();
    return true;
  }

  clear() { this.done = []; this.undone = []; this.onMove(); }
  get canUndo() { return this.done.length > 0; }
  get canRedo() { return this.undone.length > 0; }
}
