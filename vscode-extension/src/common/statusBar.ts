/** The status bar item: backend · model · last latency, a spinner while loading, warnings. */
import * as vscodeapi from './vscodeapi';
import { BarView, ServerStatus, loadingView, statusBarView } from './status';

export const MENU_COMMAND = 'companion.menu';

export class StatusBar {
  private readonly item: vscodeapi.StatusBarItem;
  private loading = false;
  last: ServerStatus | undefined;

  constructor(item: vscodeapi.StatusBarItem = vscodeapi.createStatusBarItem('companion.status', 100)) {
    this.item = item;
    this.item.name = 'Companion';
    this.item.command = MENU_COMMAND;
    this.render({ text: '$(loading~spin) Companion', warning: false, tooltip: 'Companion: starting' });
    this.item.show();
  }

  get isLoading(): boolean {
    return this.loading;
  }

  starting(message = 'starting'): void {
    this.render({ text: '$(loading~spin) Companion', warning: false, tooltip: `Companion: ${message}` });
  }

  loadingModel(message: string, percentage?: number): void {
    this.loading = true;
    this.render(loadingView(message, percentage));
  }

  loaded(): void {
    this.loading = false;
  }

  update(status: ServerStatus): void {
    this.last = status;
    if (this.loading && status.state !== 'loading') {
      this.loading = false;
    }
    if (!this.loading) {
      this.render(statusBarView(status));
    }
  }

  problem(text: string, tooltip: string): void {
    this.loading = false;
    this.render({ text: `$(error) ${text}`, warning: true, tooltip });
  }

  disabled(): void {
    this.loading = false;
    this.render({ text: '$(circle-slash) Companion', warning: false, tooltip: 'Companion: stopped' });
  }

  text(): string {
    return this.item.text;
  }

  dispose(): void {
    this.item.dispose();
  }

  private render(view: BarView): void {
    this.item.text = view.text;
    this.item.tooltip = view.tooltip;
    this.item.backgroundColor = view.warning ? vscodeapi.warningBackground() : undefined;
    this.item.accessibilityInformation = { label: `Companion status: ${view.text.replace(/\$\([^)]*\)\s*/g, '')}` };
  }
}
